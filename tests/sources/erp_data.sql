INSERT INTO customers (customer_no, first_name, last_name, email, kind, lang, newsletter, sales_rep, credit_limit, updated_at) VALUES
  ('E-1001', 'Ada', 'Byron', 'ada@example.org', 'consumer', 'en', 1, 'maria', 2000.00, '2026-11-01 09:00:00'),
  ('E-1003', 'Ada', 'Byron (duplicate)', NULL, 'consumer', 'en', 0, NULL, NULL, '2026-11-01 09:00:00');
INSERT INTO customers (customer_no, company, email, kind, lang, newsletter, sales_rep, credit_limit, updated_at) VALUES
  ('E-1002', 'Cox Engineering Ltd', 'accounts@cox.example', 'industrial', 'de', 0, 'tom', 10000.00, '2026-11-02 09:00:00');
INSERT INTO customer_phones (customer_id, phone, kind) VALUES
  (1, '020 7946 0111', 'work'), (1, '+44 (0)7700 900111', 'mobile'),
  (2, '07700 900333', 'mobile'), (3, '0044-7700-900222', 'work');
INSERT INTO orders (order_no, customer_id, ordered_at, total, currency, status, updated_at) VALUES
  ('SO-1', 1, '2026-10-01 10:00:00', 30.00, 'GBP', 'invoiced', '2026-11-03 09:00:00'),
  ('SO-2', 1, '2026-11-20 15:30:00', 250.00, 'GBP', 'invoiced', '2026-11-03 09:00:01'),
  ('SO-3', 3, '2026-11-21 08:00:00', 999.90, 'GBP', 'open', '2026-11-03 09:00:02');
INSERT INTO order_lines VALUES
  (1, 1, 'TEA-01', 'Breakfast tea', 2, 15.000),
  (2, 1, 'POT-02', 'Teapot', 1, 200.000), (2, 2, 'TEA-01', 'Breakfast tea', 5, 10.000),
  (3, 1, 'GEAR-9', 'Gearbox', 1, 999.900);
INSERT INTO invoices (invoice_no, customer_id, issued_at, due_at, amount, paid, currency, updated_at) VALUES
  ('IN-1', 1, '2026-10-01', '2026-10-31', 30.00, 30.00, 'GBP', '2026-11-04 09:00:00'),
  ('IN-2', 1, '2026-09-20', '2026-10-20', 100.00, 0.00, 'GBP', '2026-11-04 09:00:01'),
  ('IN-3', 1, '2026-11-20', '2099-12-20', 250.00, 100.00, 'GBP', '2026-11-04 09:00:02'),
  ('IN-4', 3, '2026-11-21', '2099-12-21', 999.90, 0.00, 'GBP', '2026-11-04 09:00:03');
