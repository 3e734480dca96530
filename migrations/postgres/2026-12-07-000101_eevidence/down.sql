DROP TABLE eevidence_correspondence;
DROP TABLE eevidence_outbox;
DROP TABLE eevidence_orders;
