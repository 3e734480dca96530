ALTER TABLE eevidence_orders DROP COLUMN language;
