from django.urls import path

from realtime.consumers import PriceStreamConsumer

websocket_urlpatterns = [
    path("api/v2/realtime/ws/prices", PriceStreamConsumer.as_asgi()),
]
