// Entry of the test page: mounts the guide's component unchanged, as a
// create-react-app index.tsx would (without StrictMode's development-only
// double effects: this is a production build).
import React from 'react';
import { createRoot } from 'react-dom/client';
import RealTimeChart from '../guide/RealTimeChart';

createRoot(document.getElementById('root')!).render(<RealTimeChart />);
