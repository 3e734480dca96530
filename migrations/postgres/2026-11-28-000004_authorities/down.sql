DROP TABLE authority_keys;
DROP TABLE authorities;
