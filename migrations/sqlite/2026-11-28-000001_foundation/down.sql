DROP TABLE writ_meta;
