// The original guide's vanilla-JS WebSocket client ("예제 1: JavaScript/TypeScript
// (Vanilla)"), served for /demo/ as a protocol compatibility demo. It is kept as
// the guide wrote it (a classic script with global functions) except where marked
// "ADAPTED:"; docs/dashboard.md lists each adaptation and why. The product's own
// client is clients/js/price-stream.js (served as /static/dashboard/price-stream.js).

// 1. WebSocket client initialisation
// ADAPTED: the guide hard-codes ws://localhost:8000; use this page's own host and
// scheme so the demo works on any port and behind TLS.
const ws = new WebSocket(
  (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
  '/api/v2/realtime/ws/prices'
);

// 2. Connected
ws.onopen = () => {
  console.log('✅ Connected to real-time price stream');

  // Subscribe to symbols
  ws.send(JSON.stringify({
    action: 'subscribe',
    symbols: ['AAPL', 'MSFT', 'TSLA', 'GOOGL', 'AMZN']
  }));
};

// 3. Receive and handle messages
ws.onmessage = (event) => {
  const data = JSON.parse(event.data);

  console.log('📨 Received:', data.type);

  switch(data.type) {
    case 'connected':
      // Server greeting
      console.log('🔗', data.message);
      break;

    case 'subscription':
      // Subscribe / unsubscribe acknowledgement
      console.log(`✅ ${data.action}:`, data.symbols);
      console.log(`📊 Total subscribed:`, data.subscribed_total);
      break;

    case 'price_update':
      // 📈 Real-time price data
      const priceData = {
        symbol: data.symbol,
        price: data.last_price,
        askPrice: data.ask_price,
        bidPrice: data.bid_price,
        askSize: data.ask_size,
        bidSize: data.bid_size,
        timestamp: new Date(data.timestamp)
      };

      console.log(
        `${priceData.symbol}: $${priceData.price} ` +
        `(Ask: $${priceData.askPrice}, Bid: $${priceData.bidPrice})`
      );

      // Update the UI (chart, price display, ...)
      updateUI(priceData);
      break;

    case 'subscriptions':
      // Current subscriptions
      console.log('📋 Current subscriptions:', data.symbols);
      break;

    case 'pong':
      // Ping reply
      console.log('💓 Connection alive');
      break;

    case 'error':
      console.error('❌ Error:', data.message);
      break;
  }
};

// 4. Errors
ws.onerror = (error) => {
  console.error('❌ WebSocket error:', error);
};

// 5. Disconnected
ws.onclose = () => {
  console.log('🔌 Disconnected from real-time stream');
  // Add reconnect logic here if needed
};

// ==================== Utilities ====================

// ADAPTED: the guide's helpers log "WebSocket not connected" and drop the request
// while the socket is still opening, yet its example page calls subscribe() on
// DOMContentLoaded, which always happens before the socket opens. A request made
// while CONNECTING is now sent once the socket opens.
function sendWhenOpen(message) {
  if (ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(message));
    return true;
  }
  if (ws.readyState === WebSocket.CONNECTING) {
    ws.addEventListener('open', () => ws.send(JSON.stringify(message)), { once: true });
    return true;
  }
  return false;
}

// Subscribe to more symbols
function subscribe(symbols) {
  if (!sendWhenOpen({
    action: 'subscribe',
    symbols: Array.isArray(symbols) ? symbols : [symbols]
  })) {
    console.error('WebSocket not connected');
  }
}

// Unsubscribe symbols
function unsubscribe(symbols) {
  if (!sendWhenOpen({
    action: 'unsubscribe',
    symbols: Array.isArray(symbols) ? symbols : [symbols]
  })) {
    console.error('WebSocket not connected');
  }
}

// List current subscriptions
function getSubscriptions() {
  sendWhenOpen({
    action: 'get_subscriptions'
  });
}

// Keep-alive (ping every 30 seconds)
setInterval(() => {
  if (ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ action: 'ping' }));
  }
}, 30000);

// Close the connection
function closeConnection() {
  ws.close();
}

// ==================== UI update ====================

function updateUI(priceData) {
  // Example: update the DOM
  const element = document.getElementById(`price-${priceData.symbol}`);
  if (element) {
    // ADAPTED: last_price is null until a symbol's first trade (a quote can come
    // first); the guide's unguarded toFixed() threw a TypeError there.
    element.textContent = `${priceData.symbol}: $${priceData.price?.toFixed(2) ?? 'N/A'}`;

    // Change colour (up/down)
    // In practice, compare with the previous price to choose the colour
  }
}
