-- Node leases when no Redis is configured (with Redis the lease is a key with a TTL instead).
-- lease_until is database time, so node clocks never matter.
CREATE TABLE IF NOT EXISTS nodes (
    node_id     text PRIMARY KEY,
    instance    text NOT NULL,
    lease_until timestamptz NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
);

-- the lease reaper asks "which nodes still hold devices that are not offline?"
CREATE INDEX IF NOT EXISTS device_presence_live_node_idx
    ON device_presence (node_id) WHERE status <> 'offline';
