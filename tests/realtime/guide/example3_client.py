import asyncio
import json
import websockets

async def main():
    uri = "ws://localhost:8000/api/v2/realtime/ws/prices"

    async with websockets.connect(uri) as websocket:
        # 심볼 구독
        await websocket.send(json.dumps({
            "action": "subscribe",
            "symbols": ["AAPL", "MSFT", "TSLA"]
        }))

        # 메시지 수신
        async for message in websocket:
            data = json.loads(message)

            if data.get("type") == "price_update":
                symbol = data.get("symbol")
                price = data.get("last_price")
                print(f"{symbol}: ${price}")

if __name__ == "__main__":
    asyncio.run(main())
