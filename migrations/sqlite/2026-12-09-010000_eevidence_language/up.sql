-- The order's language (ISO 639-1) as the EPOC gives it, for Form 3 (issue 18).
ALTER TABLE eevidence_orders ADD COLUMN language TEXT;
