// The echo's two nodes, relative to the guest's domain home (guest/agent/echo.ts
// answers; the bench's dom0 probe, dom0/bench-probe/reaction.ts, asks). data/
// is writable by the guest and by dom0, which is why they live there.
export const PING_NODE = 'data/xtv/ping';
export const PONG_NODE = 'data/xtv/pong';
