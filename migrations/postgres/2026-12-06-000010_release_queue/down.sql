DROP TABLE release_queue;
