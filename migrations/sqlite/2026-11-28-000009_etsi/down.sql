DROP TABLE etsi_deliveries;
DROP TABLE etsi_objects;
DROP TABLE etsi_messages;
DROP TABLE authority_etsi;
