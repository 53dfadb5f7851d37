from channels.generic.websocket import AsyncJsonWebsocketConsumer


class PriceStreamConsumer(AsyncJsonWebsocketConsumer):
    pass
