import React, { useEffect, useRef, useState } from 'react';
import './RealTimeChart.css';

// TypeScript 타� 정�
interface PriceData {
  symbol: string;
  last_price: number;
  ask_price?: number;
  bid_price?: number;
  ask_size?: number;
  bid_size?: number;
  timestamp: number;
  data_type?: string;
}

interface ChartState {
  isConnected: boolean;
  subscribed: string[];
  prices: Record<string, PriceData>;
  priceHistory: Record<string, number[]>;
}

const RealTimeChart: React.FC = () => {
  const wsRef = useRef<WebSocket | null>(null);
  const [state, setState] = useState<ChartState>({
    isConnected: false,
    subscribed: [],
    prices: {},
    priceHistory: {}
  });
  const [inputValue, setInputValue] = useState('');
  const [error, setError] = useState<string | null>(null);

  // WebSocket 초기화 � 연결
  useEffect(() => {
    initializeWebSocket();

    return () => {
      if (wsRef.current) {
        wsRef.current.close();
      }
    };
  }, []);

  const initializeWebSocket = () => {
    try {
      const wsUrl = process.env.REACT_APP_WS_URL ||
                    'ws://localhost:8000/api/v2/realtime/ws/prices';

      wsRef.current = new WebSocket(wsUrl);

      wsRef.current.onopen = () => {
        console.log('✅ WebSocket connected');
        setState(prev => ({ ...prev, isConnected: true }));
        setError(null);

        // 초기 심볼 구�
        subscribeToSymbols(['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'TSLA']);
      };

      wsRef.current.onmessage = (event) => {
        const data = JSON.parse(event.data);
        handleMessage(data);
      };

      wsRef.current.onerror = (error) => {
        console.error('� WebSocket error:', error);
        setError('WebSocket connection error');
        setState(prev => ({ ...prev, isConnected: false }));
      };

      wsRef.current.onclose = () => {
        console.log('� WebSocket disconnected');
        setState(prev => ({ ...prev, isConnected: false }));
      };

    } catch (err) {
      console.error('Error initializing WebSocket:', err);
      setError('Failed to initialize WebSocket');
    }
  };

  const handleMessage = (data: any) => {
    switch (data.type) {
      case 'connected':
        console.log('ğ��� Connected to server:', data.message);
        break;

      case 'price_update':
        // ğ��� 실시간 가격 ��터 처리
        const symbol = data.symbol;
        const newPrice = data.last_price;

        setState(prev => {
          // 가격 �스토리 업��트 (최대 100개 저�)
          const history = prev.priceHistory[symbol] || [];
          const updatedHistory = [...history, newPrice].slice(-100);

          return {
            ...prev,
            prices: {
              ...prev.prices,
              [symbol]: {
                symbol: symbol,
                last_price: newPrice,
                ask_price: data.ask_price,
                bid_price: data.bid_price,
                ask_size: data.ask_size,
                bid_size: data.bid_size,
                timestamp: data.timestamp,
                data_type: data.data_type
              }
            },
            priceHistory: {
              ...prev.priceHistory,
              [symbol]: updatedHistory
            }
          };
        });
        break;

      case 'subscription':
        console.log(`✅ ${data.action}:`, data.symbols);
        setState(prev => ({
          ...prev,
          subscribed: data.symbols
        }));
        break;

      case 'subscriptions':
        setState(prev => ({
          ...prev,
          subscribed: data.symbols
        }));
        break;

      case 'error':
        console.error('Server error:', data.message);
        setError(data.message);
        break;
    }
  };

  const subscribeToSymbols = (symbols: string | string[]) => {
    if (wsRef.current && wsRef.current.readyState === WebSocket.OPEN) {
      wsRef.current.send(JSON.stringify({
        action: 'subscribe',
        symbols: Array.isArray(symbols) ? symbols : [symbols]
      }));
    } else {
      setError('WebSocket not connected');
    }
  };

  const unsubscribeFromSymbols = (symbols: string[]) => {
    if (wsRef.current && wsRef.current.readyState === WebSocket.OPEN) {
      wsRef.current.send(JSON.stringify({
        action: 'unsubscribe',
        symbols: symbols
      }));
    }
  };

  const handleAddSymbol = () => {
    const symbol = inputValue.trim().toUpperCase();
    if (symbol) {
      subscribeToSymbols(symbol);
      setInputValue('');
    }
  };

  const handleRemoveSymbol = (symbol: string) => {
    unsubscribeFromSymbols([symbol]);
  };

  const getPriceChangeColor = (symbol: string) => {
    const history = state.priceHistory[symbol];
    if (!history || history.length < 2) return '#000';

    const current = history[history.length - 1];
    const previous = history[history.length - 2];

    return current > previous ? '#22c55e' : current < previous ? '#ef4444' : '#000';
  };

  return (
    <div className="real-time-chart">
      <header className="chart-header">
        <h1>ğ��� Real-time Stock Prices</h1>

        <div className={`status ${state.isConnected ? 'connected' : 'disconnected'}`}>
          <span className="status-dot"></span>
          {state.isConnected ? '✅ Connected' : '� Disconnected'}
        </div>
      </header>

      {error && (
        <div className="error-banner">
          ⚠� {error}
          <button onClick={() => setError(null)}>Dismiss</button>
        </div>
      )}

      <div className="controls">
        <input
          type="text"
          placeholder="Enter symbol (e.g., NVDA)"
          value={inputValue}
          onChange={(e) => setInputValue(e.target.value)}
          onKeyPress={(e) => e.key === 'Enter' && handleAddSymbol()}
        />
        <button onClick={handleAddSymbol} disabled={!state.isConnected}>
          Add Symbol
        </button>
      </div>

      <div className="subscription-info">
        <strong>Subscribed ({state.subscribed.length}):</strong>
        <span>{state.subscribed.join(', ')}</span>
      </div>

      <div className="price-grid">
        {Object.entries(state.prices).map(([symbol, priceData]) => (
          <PriceCard
            key={symbol}
            priceData={priceData}
            color={getPriceChangeColor(symbol)}
            onRemove={() => handleRemoveSymbol(symbol)}
          />
        ))}
      </div>
    </div>
  );
};

// 개별 가격 카드 컴��넌트
interface PriceCardProps {
  priceData: PriceData;
  color: string;
  onRemove: () => void;
}

const PriceCard: React.FC<PriceCardProps> = ({ priceData, color, onRemove }) => {
  return (
    <div className="price-card">
      <div className="card-header">
        <h3 className="symbol">{priceData.symbol}</h3>
        <button className="remove-btn" onClick={onRemove} title="Remove">✕</button>
      </div>

      <div className="card-price" style={{ color }}>
        ${priceData.last_price?.toFixed(2) ?? 'N/A'}
      </div>

      <div className="card-details">
        <div className="detail-row">
          <span className="label">Ask:</span>
          <span className="value">${priceData.ask_price?.toFixed(2) ?? 'N/A'}</span>
          <span className="size">({priceData.ask_size})</span>
        </div>

        <div className="detail-row">
          <span className="label">Bid:</span>
          <span className="value">${priceData.bid_price?.toFixed(2) ?? 'N/A'}</span>
          <span className="size">({priceData.bid_size})</span>
        </div>
      </div>

      <div className="card-footer">
        <small>{new Date(priceData.timestamp).toLocaleTimeString()}</small>
      </div>
    </div>
  );
};

export default RealTimeChart;
