DROP TABLE authority_tls_pins;
