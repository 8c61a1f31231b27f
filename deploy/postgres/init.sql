-- The alvo database: pgSphere for ADQL geometry; the service creates its tables.
CREATE EXTENSION IF NOT EXISTS pg_sphere;
