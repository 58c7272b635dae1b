-- Generation: one row whose counter every write to the reference values,
-- the appraisal policies or the key broker policies increments in the
-- same transaction (triggers, so every writer counts, whatever process or
-- version it runs). A Cache compares it to decide whether to reload.
CREATE TABLE store_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT  NOT NULL
);
INSERT INTO store_generation (id, generation) VALUES (1, 1);
CREATE TRIGGER reference_values_gen_insert AFTER INSERT ON reference_values
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER reference_values_gen_update AFTER UPDATE ON reference_values
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER reference_values_gen_delete AFTER DELETE ON reference_values
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER reference_value_items_gen_insert AFTER INSERT ON reference_value_items
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER reference_value_items_gen_update AFTER UPDATE ON reference_value_items
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER reference_value_items_gen_delete AFTER DELETE ON reference_value_items
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_gen_insert AFTER INSERT ON policies
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_gen_update AFTER UPDATE ON policies
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_gen_delete AFTER DELETE ON policies
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER kbs_policies_gen_insert AFTER INSERT ON kbs_policies
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER kbs_policies_gen_update AFTER UPDATE ON kbs_policies
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER kbs_policies_gen_delete AFTER DELETE ON kbs_policies
BEGIN UPDATE store_generation SET generation = generation + 1 WHERE id = 1; END;
