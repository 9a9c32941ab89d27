-- Benchmark data: :customers customers, 2 services, :n calls in :month.
\set ON_ERROR_STOP 1
CREATE EXTENSION overage;
CREATE SCHEMA bench;

CREATE FUNCTION bench.ms(q text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	EXECUTE q;
	RETURN round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
END
$$;

-- catalog: E5 (overage) gives 120 min of CALL and 30 of INTL per licence;
-- E3 (no overage tag) 120 min of CALL
INSERT INTO overage.service (service_id, name, unit_price) VALUES
	('CALL', 'Domestic calling', 0.02), ('INTL', 'International calling', 0.25);
INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES
	('E5', '1', 'E5 with calling', 'IncludeOverage'), ('E3', '1', 'E3 with calling', NULL);
INSERT INTO overage.sku_service VALUES
	('E5', '1', 'CALL', 120), ('E5', '1', 'INTL', 30), ('E3', '1', 'CALL', 120);
INSERT INTO overage.partner SELECT format('P%s', p), format('Partner %s', p)
  FROM generate_series(0, 9) p;
INSERT INTO overage.customer SELECT format('C%s', lpad(c::text, 5, '0')), format('Customer %s', c), 'US'
  FROM generate_series(1, :customers) c;

-- licences and holders, with changes inside the month:
--   every customer: partner c % 10 buys 1..3 E5 on 08-01 (first in)
--   c % 5 = 0: partner (c+1) % 10 buys 1 E5 on 08-02; the first releases
--              on 10-10 and the second takes the overage on 10-20
--   c % 7 = 0: the first raises its quantity by 1 on 10-15
--   c % 13 = 0: partner c % 10 buys 1 E3 (no overage tag) on 10-05
--   c % 11 = 0: partner c % 10 buys 1 more E5 on 10-08 and cancels it on
--               10-25 (the pool grows, then shrinks below what many of
--               these customers have already used)
DO $$
DECLARE
	c int;
	cust text;
	pa text;
	pb text;
	lic uuid;
	extra uuid;
	ob uuid;
	n int := (SELECT count(*) FROM overage.customer);
BEGIN
	FOR c IN 1 .. n LOOP
		cust := format('C%s', lpad(c::text, 5, '0'));
		pa := format('P%s', c % 10);
		pb := format('P%s', (c + 1) % 10);
		lic := overage.purchase(pa, cust, 'E5', '1', 1 + c % 3, '2026-08-01 00:00Z');
		IF c % 5 = 0 THEN
			PERFORM overage.purchase(pb, cust, 'E5', '1', 1, '2026-08-02 00:00Z');
		END IF;
		IF c % 13 = 0 THEN
			PERFORM overage.purchase(pa, cust, 'E3', '1', 1, '2026-10-05 00:00Z');
		END IF;
		IF c % 11 = 0 THEN
			extra := overage.purchase(pa, cust, 'E5', '1', 1, '2026-10-08 00:00Z');
		END IF;
		IF c % 7 = 0 THEN
			PERFORM overage.set_quantity(lic, 2 + c % 3, '2026-10-15 00:00Z');
		END IF;
		IF c % 11 = 0 THEN
			PERFORM overage.cancel(extra, '2026-10-25 00:00Z');
		END IF;
		IF c % 5 = 0 THEN
			PERFORM overage.release_overage(pa, cust, 'CALL', '2026-10-10 00:00Z');
			PERFORM overage.release_overage(pa, cust, 'INTL', '2026-10-10 00:00Z');
			SELECT subscription_id INTO ob FROM overage.subscription
			 WHERE partner_id = pb AND customer_id = cust AND kind = 'overage';
			PERFORM overage.assign_overage(pb, cust, 'CALL', ob, '2026-10-20 00:00Z');
			PERFORM overage.assign_overage(pb, cust, 'INTL', ob, '2026-10-20 00:00Z');
		END IF;
	END LOOP;
END
$$;

-- the calls, in random order: 80 % CALL, 20 % INTL, 1..600 s, uniform over
-- the month
CREATE TABLE bench.calls AS
SELECT i AS id,
	   format('C%s', lpad((1 + floor(random() * :customers))::int::text, 5, '0')) AS customer_id,
	   CASE WHEN random() < 0.8 THEN 'CALL' ELSE 'INTL' END AS service_id,
	   format('u%s', floor(random() * 50)::int) AS user_id,
	   :'month'::timestamp AT TIME ZONE 'UTC' + random() * interval '31 days' AS started_at,
	   1 + floor(random() * 600)::int AS duration_s
  FROM generate_series(1, :n) i;
ALTER TABLE bench.calls ADD PRIMARY KEY (id);
VACUUM ANALYZE bench.calls;

CREATE FUNCTION bench.load_batches(target text, batch int, total int)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 0 .. total / batch - 1 LOOP
		EXECUTE format('INSERT INTO %s (customer_id, service_id, user_id, started_at, duration_s)'
					   ' SELECT customer_id, service_id, user_id, started_at - interval ''1 month'', duration_s'
					   ' FROM bench.calls WHERE id > $1 AND id <= $2', target)
			USING i * batch, (i + 1) * batch;
	END LOOP;
END
$$;

-- one loader of four: calls (from, to] of bench.calls, dated two months
-- earlier, in statements of batch calls, each committed
CREATE PROCEDURE bench.load_committed(target text, batch int, from_id int, to_id int)
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 0 .. (to_id - from_id) / batch - 1 LOOP
		EXECUTE format('INSERT INTO %s (customer_id, service_id, user_id, started_at, duration_s)'
					   ' SELECT customer_id, service_id, user_id, started_at - interval ''2 months'', duration_s'
					   ' FROM bench.calls WHERE id > $1 AND id <= $2', target)
			USING from_id + i * batch, from_id + (i + 1) * batch;
		COMMIT;
	END LOOP;
END
$$;

-- pool_status of n random groups of the month, as of its last second
CREATE FUNCTION bench.pool_probe(n int, month date)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	g record;
	k bigint := 0;
BEGIN
	FOR g IN SELECT customer_id, service_id FROM overage.usage_month f
			  WHERE f.month = pool_probe.month ORDER BY random() LIMIT n LOOP
		PERFORM * FROM overage.pool_status(g.customer_id, g.service_id,
										   pool_probe.month + interval '1 month' - interval '1 second');
		k := k + 1;
	END LOOP;
	RETURN k;
END
$$;

-- the plain table: same shape, same index, no triggers
CREATE TABLE bench.plain_usage (
	usage_id	bigint GENERATED ALWAYS AS IDENTITY,
	customer_id	text NOT NULL,
	service_id	text NOT NULL,
	user_id		text NOT NULL,
	started_at	timestamptz NOT NULL,
	duration_s	integer NOT NULL CHECK (duration_s > 0)
);
CREATE INDEX ON bench.plain_usage
	((date_trunc('month', started_at AT TIME ZONE 'UTC')), customer_id,
	 service_id, started_at, usage_id) INCLUDE (duration_s);

-- The same lines without the extension's code (1.2 rule): the peer
-- bench.sql_month, the reference loop bench.ref_month and the other
-- candidates measured against them; see peers.sql.
\ir peers.sql
