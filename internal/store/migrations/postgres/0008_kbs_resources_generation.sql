-- The key broker's resources count as writes to the generation too, so
-- that a Cache may serve them from memory (read through, per snapshot).
CREATE TRIGGER kbs_resources_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON kbs_resources
    FOR EACH STATEMENT EXECUTE FUNCTION store_generation_bump();
