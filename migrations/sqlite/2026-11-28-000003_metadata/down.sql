DROP TABLE holds;
DROP TABLE ip_events;
DROP TABLE account_identifiers;
DROP TABLE accounts;
