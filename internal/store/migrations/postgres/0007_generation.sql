-- Generation: one row whose counter every write to the reference values,
-- the appraisal policies or the key broker policies increments in the
-- same transaction (statement triggers, so every writer counts, whatever
-- process or version it runs). A Cache polls it to decide whether to
-- reload.
CREATE TABLE store_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT  NOT NULL
);
INSERT INTO store_generation (id, generation) VALUES (1, 1);
CREATE FUNCTION store_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE store_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER reference_values_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reference_values
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
CREATE TRIGGER reference_value_items_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON reference_value_items
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
CREATE TRIGGER policies_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
CREATE TRIGGER kbs_policies_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kbs_policies
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
