-- The running nodes and their heartbeats. A node beats by adding one to `beats`; another node that sees the
-- count stand still for the node timeout (on its own clock: clocks of different machines are never compared)
-- takes the silent node's leases back.
CREATE TABLE nodes (
    node_id      TEXT   PRIMARY KEY,
    beats        BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
