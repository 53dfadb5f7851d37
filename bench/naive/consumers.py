"""The tutorial consumer: one group membership per symbol, one send per event."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer


def group_name(symbol: str) -> str:
    return f"prices.{symbol}"


class PriceConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.symbols = set()
        await self.accept()
        await self.send_json(
            {"type": "connected", "message": "Connected to real-time price stream"}
        )

    async def disconnect(self, code):
        for symbol in self.symbols:
            await self.channel_layer.group_discard(
                group_name(symbol), self.channel_name
            )

    async def receive_json(self, content, **kwargs):
        if content.get("action") != "subscribe":
            return
        symbols = content.get("symbols", [])
        if isinstance(symbols, str):
            symbols = [symbols]
        added = []
        for symbol in (s.strip().upper() for s in symbols):
            if symbol not in self.symbols:
                self.symbols.add(symbol)
                added.append(symbol)
                await self.channel_layer.group_add(
                    group_name(symbol), self.channel_name
                )
        await self.send_json(
            {
                "type": "subscription",
                "action": "subscribed",
                "symbols": added,
                "subscribed_total": len(self.symbols),
            }
        )

    async def price_update(self, event):
        await self.send_json(event["data"])
