DROP TABLE writ_commit_flush;
