-- Which store holds each node's lease ('redis' or 'postgres'). A node judges only peers whose
-- lease lives where its own does: a node without Redis must never take a Redis-leased peer
-- for dead because it has no row lease in this table (and the other way round).
ALTER TABLE nodes ADD COLUMN IF NOT EXISTS lease_store text NOT NULL DEFAULT 'postgres';
