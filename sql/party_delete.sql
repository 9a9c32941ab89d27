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

-- A load looks up only the ids its backend has not found before
-- (party_cache.c); a delete or a change of an id makes it look again.
-- C4 is found by a load, its calls are removed, it is deleted: the next
-- load of C4 is refused.
INSERT INTO overage.customer VALUES ('C4', 'Northwind', 'US');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C4', 'CALL', 'u4', '2026-10-04 10:00Z', 30);
DELETE FROM overage.usage WHERE customer_id = 'C4';
DELETE FROM overage.customer WHERE customer_id = 'C4';
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C4', 'CALL', 'u4', '2026-10-04 11:00Z', 30);
-- found in a transaction that rolls back the customer: forgotten with it
BEGIN;
INSERT INTO overage.customer VALUES ('C5', 'Litware', 'US');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C5', 'CALL', 'u5', '2026-10-05 10:00Z', 30);
ROLLBACK;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C5', 'CALL', 'u5', '2026-10-05 11:00Z', 30);
-- and in a subtransaction rolled back, while the transaction goes on
BEGIN;
SAVEPOINT s;
INSERT INTO overage.customer VALUES ('C6', 'Wingtip', 'US');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C6', 'CALL', 'u6', '2026-10-06 10:00Z', 30);
ROLLBACK TO SAVEPOINT s;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C6', 'CALL', 'u6', '2026-10-06 11:00Z', 30);
ROLLBACK;
-- found in a subtransaction that is released: kept, and true at commit
BEGIN;
SAVEPOINT s;
INSERT INTO overage.customer VALUES ('C7', 'Adatum', 'US');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C7', 'CALL', 'u7', '2026-10-07 10:00Z', 30);
RELEASE SAVEPOINT s;
COMMIT;
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C7', 'CALL', 'u7', '2026-10-07 11:00Z', 30);

-- A change of the id is a delete of the old one: kept while it has calls
UPDATE overage.customer SET customer_id = 'C3b' WHERE customer_id = 'C3';
UPDATE overage.service SET service_id = 'VOICE' WHERE service_id = 'CALL';
-- the name of a customer with calls can change
UPDATE overage.customer SET name = 'Tailspin Toys' WHERE customer_id = 'C3';
-- without calls the id changes, and a load of the old id is refused
INSERT INTO overage.customer VALUES ('C8', 'Proseware', 'US');
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C8', 'CALL', 'u8', '2026-10-08 10:00Z', 30);
DELETE FROM overage.usage WHERE customer_id = 'C8';
UPDATE overage.customer SET customer_id = 'C8b' WHERE customer_id = 'C8';
INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s) VALUES
	('C8', 'CALL', 'u8', '2026-10-08 11:00Z', 30);
SELECT customer_id, name FROM overage.customer ORDER BY 1;
SELECT customer_id, service_id, started_at, duration_s FROM overage.usage ORDER BY usage_id;

DROP EXTENSION overage;
