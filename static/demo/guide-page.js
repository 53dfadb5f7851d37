// The guide's example page script ("HTML에서 사용 예제"), moved out of the page's
// inline <script> so the Content-Security-Policy needs no 'unsafe-inline'. A classic
// script, loaded after websocket-client.js, whose globals (ws, subscribe) it uses.

// Subscribe to the initial symbols when the page loads
// (websocket-client.js now sends it once the socket is open; see ADAPTED there)
document.addEventListener('DOMContentLoaded', () => {
  subscribe(['AAPL', 'MSFT', 'GOOGL']);
});

// Add a new symbol
// ADAPTED: the button's onclick="addSymbol()" attribute is now a listener
// below (the Content-Security-Policy forbids inline handlers).
function addSymbol() {
  const input = document.getElementById('symbolInput');
  if (input.value.trim()) {
    subscribe(input.value.toUpperCase());
    input.value = '';
  }
}

document.getElementById('addSymbolButton').addEventListener('click', addSymbol);

// Enter key
document.getElementById('symbolInput')?.addEventListener('keypress', (e) => {
  if (e.key === 'Enter') {
    addSymbol();
  }
});

// Connection status display
const updateConnectionStatus = (connected) => {
  const status = document.getElementById('status');
  if (connected) {
    status.textContent = '✅ Connected';
    status.className = 'status connected';
  } else {
    status.textContent = '❌ Disconnected';
    status.className = 'status disconnected';
  }
};

// Initial status update
// ADAPTED: as a separate file this script can run after the socket opened (the
// browser fetches it while the socket connects), so the current state is shown
// first and the listeners follow the changes.
updateConnectionStatus(ws.readyState === WebSocket.OPEN);
ws.addEventListener('open', () => updateConnectionStatus(true));
ws.addEventListener('close', () => updateConnectionStatus(false));

// Price card UI update (improves the client's updateUI)
const priceHistory = {};

function updateUI(priceData) {
  const container = document.getElementById('prices');
  let card = document.getElementById(`card-${priceData.symbol}`);

  // Keep the previous price (for the colour)
  const prevPrice = priceHistory[priceData.symbol];
  priceHistory[priceData.symbol] = priceData.price;

  if (!card) {
    // New card
    card = document.createElement('div');
    card.id = `card-${priceData.symbol}`;
    card.className = 'price-card';
    container.appendChild(card);
  }

  // Direction of the price change
  let priceClass = '';
  if (prevPrice) {
    // ADAPTED: the guide marked an unchanged price (every quote repeats the
    // last trade price) as 'down'; unchanged now keeps no colour.
    priceClass = priceData.price > prevPrice ? 'up'
      : priceData.price < prevPrice ? 'down' : '';
  }

  // Update the card
  // ADAPTED: price?.toFixed(2) ?? 'N/A' — last_price is null until a symbol's
  // first trade, and the guide's price.toFixed(2) threw a TypeError there.
  card.innerHTML = `
    <div class="symbol">${priceData.symbol}</div>
    <div class="price ${priceClass}">$${priceData.price?.toFixed(2) ?? 'N/A'}</div>
    <div class="details">
      <div>Ask: $${priceData.askPrice?.toFixed(2) || 'N/A'}</div>
      <div>Bid: $${priceData.bidPrice?.toFixed(2) || 'N/A'}</div>
      <div class="time">
        ${priceData.timestamp.toLocaleTimeString()}
      </div>
    </div>
  `;
}
