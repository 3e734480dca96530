DROP TABLE justifications;
