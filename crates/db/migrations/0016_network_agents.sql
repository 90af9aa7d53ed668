-- When each host's network agent first reported: Neutron's agent `created_at`.
ALTER TABLE net_hosts ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
