-- The key broker's resources count as writes to the generation too, so
-- that a Cache may serve them from memory (read through, per snapshot).
CREATE TRIGGER kbs_resources_gen_insert AFTER INSERT ON kbs_resources
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER kbs_resources_gen_update AFTER UPDATE ON kbs_resources
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER kbs_resources_gen_delete AFTER DELETE ON kbs_resources
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
