DROP TABLE order_attachments;
