from django.urls import path

from realtime.fanout.consumers import PriceStreamConsumer

websocket_urlpatterns = [
    path("api/v2/realtime/ws/prices", PriceStreamConsumer.as_asgi()),
]
