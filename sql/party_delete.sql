--
-- party_delete: a customer or a service with calls is kept (1.2)
--
-- overage.usage has no foreign key to customer or service (its hot path
-- stays one index); a delete of either takes usage in SHARE mode and looks
-- for calls (test/isolation/specs/delete_vs_ingest.spec races it with a
-- load).  Loads in READ COMMITTED then only look their parties up.
--
CREATE EXTENSION overage;
\set VERBOSITY default
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Calling', 0.02), ('INTL', 'International', 0.25), ('FAX', 'Fax', 0.10);
INSERT INTO overage.customer VALUES ('C1', 'Contoso', 'US'), ('C2', 'Fabrikam', 'US'), ('C3', 'Tailspin', 'SE');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C1', 'CALL', 'u1', '2026-09-30 23:59Z', 60),
	('C3', 'INTL', 'u3', '2026-10-02 10:00Z', 30);

-- no calls: deleted
DELETE FROM overage.customer WHERE customer_id = 'C2';
DELETE FROM overage.service WHERE service_id = 'FAX';
-- calls: kept, whatever month they are in
DELETE FROM overage.customer WHERE customer_id = 'C1';
DELETE FROM overage.customer WHERE customer_id IN ('C1', 'C3');
DELETE FROM overage.service WHERE service_id = 'INTL';
SELECT (SELECT string_agg(customer_id, ',' ORDER BY customer_id) FROM overage.customer) AS customers,
	   (SELECT string_agg(service_id, ',' ORDER BY service_id) FROM overage.service) AS services;

-- the calls deleted, the customer can go
DELETE FROM overage.usage WHERE customer_id = 'C1';
DELETE FROM overage.customer WHERE customer_id = 'C1';
-- a load of a customer that is gone writes nothing
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C3', 'CALL', 'u3', '2026-10-03 10:00Z', 30), ('C1', 'CALL', 'u1', '2026-10-03 10:00Z', 30);
SELECT customer_id, service_id, started_at, duration_s FROM overage.usage ORDER BY usage_id;

DROP EXTENSION overage;
