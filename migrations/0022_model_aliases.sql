-- Up Migration

-- Model aliases (issue 12, part 3): other names a request may use for a catalogue model ("gpt-4o-mini"
-- for the model that stands in for it, "llama-3" for the current Llama 3 build). A job records the model
-- itself, never the alias, and the response's `model` names it. An alias is never another model's name,
-- nor another model's alias (the primary key), so a name always means one model.
CREATE TABLE model_aliases (
  alias       text PRIMARY KEY CHECK (alias ~ '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$'),
  model       text NOT NULL REFERENCES models(name) ON DELETE CASCADE,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_aliases_model ON model_aliases (model);

CREATE FUNCTION model_alias_not_a_model() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM models WHERE name = NEW.alias) THEN
    RAISE EXCEPTION 'alias % is the name of a model', NEW.alias USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE FUNCTION model_name_not_an_alias() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM model_aliases WHERE alias = NEW.name) THEN
    RAISE EXCEPTION 'model name % is an alias of another model', NEW.name USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER model_aliases_not_a_model BEFORE INSERT OR UPDATE ON model_aliases FOR EACH ROW EXECUTE FUNCTION model_alias_not_a_model();
CREATE TRIGGER models_not_an_alias BEFORE INSERT ON models FOR EACH ROW EXECUTE FUNCTION model_name_not_an_alias();

-- Instances keep in-process copies of models by the name a request used (catalog/catalog.service.ts): an
-- alias that is removed or moved must drop its copy everywhere, as a changed model does.
CREATE FUNCTION catalog_notify_model_alias() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('resultity_catalog', 'models:' || OLD.alias);
  RETURN NULL;
END $$;
CREATE TRIGGER model_aliases_catalog_notify AFTER UPDATE OR DELETE ON model_aliases FOR EACH ROW EXECUTE FUNCTION catalog_notify_model_alias();

-- Down Migration
DROP TABLE model_aliases;
DROP FUNCTION catalog_notify_model_alias();
DROP TRIGGER models_not_an_alias ON models;
DROP FUNCTION model_name_not_an_alias(), model_alias_not_a_model();
