#!/usr/bin/env python3
"""
Model-based randomized test of metering: pool, attribution, month close,
reconciliation.

Each scenario (fixed seed) makes a small catalog (services with unit prices
of up to 4 decimals, one of them pure pay-as-you-go; SKUs with and without
IncludeOverage, random minutes per licence), 2-3 partners and a few
customers, then walks a timeline inside one or two calendar months (UTC):
purchase, set_quantity, cancel, create_azure_subscription, assign_overage,
release_overage (the operator, through the public API), interleaved with
INSERTs of calls into overage.usage -- single and multi-row, out of time
order, ties on started_at, calls exactly at change instants and at month
boundaries -- and invalid INSERTs (unknown customer or service, duration 0
or over 86400 s, a time in a closed month) that must fail with the right
SQLSTATE and write nothing.

An independent Python model of SPEC ("Time and money", "The pool at an
instant", "Attributing a call", "Month close") keeps its own history of
licences, quantities and holders (not read from the extension's tables;
only the ids the extension generates are read back: subscription ids and
usage ids via RETURNING, the latter being the tie-breaker of calls that
start at the same instant) and predicts:

  * pool_status(customer, service, at), every column, at random instants,
    change instants and call start instants (calls that started before at);
  * preview_month(month), line for line;
  * close_month(month): the number of lines, then overage.charge; a second
    close and usage dated in the month fail with OV006;
  * reconciliation(partner, month): one row per charge line of the
    partner, with its amounts, in Partner Center's daily rated usage
    layout (EntitlementId the holding subscription, Tier2MpnId the
    reseller);
  * 1.2 two-tier partners: assign_overage with a reseller now and then;
    a charge line is per (holder subscription, reseller, customer,
    service, unit price) and carries the reseller;
  * usage_month's running figures (calls, seconds).

Note: the order among calls of a (customer, service) that start at the
same instant cannot show in these results (they see the same pool and the
same holder, so their total included seconds do not depend on the order);
the model applies the (started_at, usage_id) order all the same.

The rule is SPEC 1.2's: included = clamp(pool(t) - included_before, 0, d)
with included_before the included (not all) seconds of the month's earlier
calls, and pool_status's remaining = greatest(pool - included, 0).  The
model also computes 1.1's rule (used_before = all earlier seconds) beside
it, only to count how often the scenarios tell the two apart (the stats
"... where 1.1 and 1.2 differ"): a third of the timelines start days into
the month and some calls are dated before the first licence change, so
pools grow after overage (first purchase after calls, later purchases,
quantity increases) and shrink (cancel, quantity decrease).
METER_RULE=1.1 makes the 1.1 rule the one checked (to run the same
scenarios against a 1.1 build); the default is 1.2.

Prices in time and place (SPEC 1.2 "Real inputs"): customers belong to
markets (US, SE, DE, a lower-case 'us', or none), and overage.service_price
gets random periods per (service, market), with price changes at random
instants inside the months (and some calls exactly at them).  The model
prices each call at the period of its customer's market in effect at its
*start*, else at the service's own price in USD; a line is per (holder,
customer, service, unit price, currency).  METER_PRICE_AT=end prices at the
call's end instead (a broken rule, to show the test catches it).

Deleting a party (1.2, README "Ingest"): now and then, from a random stream
of its own, a DELETE of a customer or a service, or a change of its id (a
delete of the old id), undone when it goes
through: the model keeps one with calls (23503, "has calls"), else one
still referenced (a customer's subscriptions or budgets, a service's SKUs:
a foreign key's 23503), else it goes.  METER_DELETES=0 leaves them out
(a Citus cluster, where the guard does nothing: README "Ingest").

Alerts (SPEC 1.2 "Budgets and alerts"): budgets are set (default or one
to five thresholds, amounts around the partner's amount so far or any)
and removed, with a few refusals, from a random stream of their own (the
rest of each seed's timeline is the one it was before).  Each rating the
test makes (rate_pending: every open month; a close: its month) is
modelled as a full evaluation of the data then: the pool alerts at the
first call whose included seconds (its own included part counted) reach
80 % and 100 % of the pool at its start (pool > 0; partner the holder
then or NULL; value the included minutes, limit the pool minutes), the
budget alerts at the first call, in (started_at, usage_id) order, after
which the partner's amount for the customer (its lines in the budget's
currency, each rounded as a charge line is) reaches each threshold
percent of the budget.  A key (month, kind, partner, customer, service,
threshold) already stored is skipped: the row stays as first raised
(never changed nor withdrawn), and a crossing moved to another holder is
a new key.  overage.alert, every column but alert_id and raised_at, must
equal that store after every rating and after every step (nothing else
raises).  Two places where the model bounds instead of knowing:
calls of several services tied at a budget crossing (SPEC orders only a
(customer, service)'s calls: the value is one an order of them gives), and
a budget crossing at or before the latest call the month's previous
rating had rated, no budget of the customer set since (the rating counts
the groups it does not walk again at their whole rated amount, so the
call it finds may be earlier: the key, the limit, threshold <= value <=
the month's amount and crossed_at a call billing the partner are
checked).  METER_STRICT_BUDGET=1 compares the latter exactly.
METER_HISTORY=N prints the last N statements on a disagreement (25).

Exits 1 on the first disagreement, printing seed, step and both values.
Standard library only; psql runs as one long-lived subprocess.

Usage: metering_model.py DBNAME [SEEDS] [STEPS]
"""
import datetime
import decimal
import json
import os
import random
import sys
from decimal import Decimal, ROUND_HALF_UP

from psql_session import Psql

decimal.getcontext().prec = 60
UTC = datetime.timezone.utc
SERVICES = ['dom', 'intl', 'payg']       # payg: 0 minutes in every SKU
# product -> (includes overage, services)
SKUS = {
    'OVD': (True, ['dom', 'payg']),
    'OVB': (True, ['dom', 'intl']),
    'OVI': (True, ['intl']),
    'NOD': (False, ['dom', 'intl']),
}
TAGS = {'OVD': 'Telco;IncludeOverage', 'OVB': 'IncludeOverage', 'OVI': 'includeoverage, Voice',
        'NOD': 'Telco'}
# first months of the scenarios: year ends, February, 30/31-day months
FIRST_MONTHS = [(2025, 12), (2026, 2), (2026, 4), (2026, 1), (2026, 6)]


class Disagreement(Exception):
    pass


HELPERS = r"""
CREATE OR REPLACE FUNCTION pg_temp.model_try(stmt text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE st text; msg text; r text;
BEGIN
    EXECUTE stmt INTO r;
    RETURN json_build_object('ok', true, 'result', r)::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    RETURN json_build_object('ok', false, 'sqlstate', st, 'message', msg)::text;
END $f$;
"""


def lit(v):
    return "'%s'" % str(v).replace("'", "''")


def tslit(t):
    return "'%s'::timestamptz" % t.strftime('%Y-%m-%d %H:%M:%S.%f+00')


def month_of(t):
    return datetime.date(t.year, t.month, 1)


def next_month(d):
    return datetime.date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def as_instant(d):
    return datetime.datetime(d.year, d.month, d.day, tzinfo=UTC)


def minutes6(seconds):
    """round(seconds / 60.0, 6) as PostgreSQL's numeric prints it."""
    return str((Decimal(seconds) / Decimal(60)).quantize(Decimal('0.000001'), rounding=ROUND_HALF_UP))


def amount2(seconds, price):
    """round(seconds * unit_price / 60, 2): numeric round is half away from zero."""
    return str((Decimal(seconds) * price / Decimal(60)).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP))


class Model:
    """SPEC's metering rules over an independent history of the data."""

    def __init__(self, minutes, prices, rule='1.2', markets=None, periods=None):
        self.rule = rule            # '1.2' (SPEC); '1.1' only to check the harness on 1.1
        self.minutes = minutes      # (product, service) -> minutes per licence
        self.prices = prices        # service -> Decimal (USD), where no period applies
        self.markets = markets or {}    # customer -> country as stored (may be None)
        self.periods = periods or {}    # (service, market) -> [(from, to or None, price, currency)]
        self.price_at_end = os.environ.get('METER_PRICE_AT') == 'end'
        self.subs = {}              # id -> dict(partner, customer, kind, product, created, ended, qhist)
        self.prov = {}              # (partner, customer) -> overage subscription id
        self.holders = {}           # (customer, service) -> [(at, sub or None, reseller or None)], in order of change
        self.calls = []             # dict(id, customer, service, at, d)
        self.closed = set()         # months
        self.budgets = {}           # (partner, customer) -> dict(amount, currency, thresholds)
        self.last_rating = {}       # month -> (ids of the calls rated then, len(budget_sets) then)
        self.budget_sets = []       # the customers of the budgets set, in the order set
        self.strict_budget = os.environ.get('METER_STRICT_BUDGET') == '1'
        self.alerts = {}            # alert key -> alert row, as stored by the first rating that raised it

    # -- history ----------------------------------------------------------
    @staticmethod
    def active(s, t):
        return s['created'] <= t and (s['ended'] is None or t < s['ended'])

    def quantity(self, s, t):
        q = None
        for at, qty in s['qhist']:
            if at <= t:
                q = qty
        return q

    def pool_s(self, c, svc, t):
        total = 0
        for s in self.subs.values():
            if s['kind'] != 'license' or s['customer'] != c or not self.active(s, t):
                continue
            if svc in SKUS[s['product']][1]:
                total += self.quantity(s, t) * self.minutes[(s['product'], svc)]
        return 60 * total

    def holder(self, c, svc, t):
        """(subscription, reseller) holding at t, or None"""
        h = None
        for at, sub, reseller in self.holders.get((c, svc), []):
            if at <= t:
                h = (sub, reseller) if sub is not None else None
        return h

    def current_holder(self, c, svc):
        h = self.holders.get((c, svc))
        return h[-1][1] if h else None

    def current_reseller(self, c, svc):
        h = self.holders.get((c, svc))
        return h[-1][2] if h else None

    def eligible(self, p, c, svc, t):
        return any(s['kind'] == 'license' and s['partner'] == p and s['customer'] == c
                   and SKUS[s['product']][0] and svc in SKUS[s['product']][1]
                   and self.active(s, t) for s in self.subs.values())

    def price(self, c, svc, call):
        """(unit price, currency) of a call: the period of the customer's
        market (upper case) in effect at the call's start, else the
        service's own price."""
        t = call['at']
        if self.price_at_end:                       # the broken rule
            t = t + datetime.timedelta(seconds=call['d'])
        market = (self.markets.get(c) or '').upper()
        for start, end, price, cur in self.periods.get((svc, market), []):
            if start <= t and (end is None or t < end):
                return price, cur
        return self.prices[svc], 'USD'

    # -- attribution --------------------------------------------------------
    def attribute(self, c, svc, month, before=None, rule=None):
        """[(call, overage seconds, holder)] for the calls of (c, svc) in the
        month (that started before `before`), in (started_at, usage_id) order.

        SPEC 1.2: included = clamp(pool(t) - included_before, 0, d), where
        included_before sums the *included* seconds of the earlier calls of
        the month (overage seconds never consume the pool).  rule '1.1' is
        the old rule (subtract all earlier seconds, overage ones included),
        kept only to measure that the scenarios tell the two apart."""
        rule = rule or self.rule
        calls = sorted((k for k in self.calls
                        if k['customer'] == c and k['service'] == svc and month_of(k['at']) == month
                        and (before is None or k['at'] < before)),
                       key=lambda k: (k['at'], k['id']))
        included_before = 0
        used = 0
        out = []
        for k in calls:
            consumed = included_before if rule == '1.2' else used
            included = min(max(self.pool_s(c, svc, k['at']) - consumed, 0), k['d'])
            out.append((k, k['d'] - included, self.holder(c, svc, k['at'])))
            included_before += included
            used += k['d']
        return out

    def pool_status(self, c, svc, t, rule=None):
        rule = rule or self.rule
        m = month_of(t)
        rows = self.attribute(c, svc, m, before=t, rule=rule)
        pool = self.pool_s(c, svc, t)
        used = sum(k['d'] for k, _, _ in rows)
        over = sum(o for _, o, _ in rows)
        included = used - over
        unassigned = sum(o for _, o, h in rows if h is None)
        # 1.2: remaining = greatest(pool - included, 0); 1.1: pool - used
        remaining = max(pool - (included if rule == '1.2' else used), 0)
        return [m.isoformat(), minutes6(pool), minutes6(used), minutes6(remaining),
                minutes6(over), minutes6(unassigned)]

    def lines(self, month, rule=None):
        """The charge lines of the month, as preview_month/charge rows."""
        groups = {}
        keys = sorted(set((k['customer'], k['service']) for k in self.calls if month_of(k['at']) == month))
        for c, svc in keys:
            for k, o, h in self.attribute(c, svc, month, rule=rule):
                if o > 0:
                    g = (c, svc, h) + self.price(c, svc, k)
                    groups[g] = groups.get(g, 0) + o
        out = []
        # 1.2: one line per (holder subscription, reseller, customer, service,
        # unit price, currency), one unassigned line per (customer, service,
        # unit price, currency)
        for (c, svc, h, price, cur), secs in groups.items():
            out.append([month.isoformat(), self.subs[h[0]]['partner'] if h else None, c, svc,
                        h[0] if h else None, secs, minutes6(secs), price, amount2(secs, price), cur,
                        h[1] if h else None])
        return sorted(out, key=line_key)

    def usage_figures(self):
        f = {}
        for k in self.calls:
            key = (month_of(k['at']).isoformat(), k['customer'], k['service'])
            n, s = f.get(key, (0, 0))
            f[key] = (n + 1, s + k['d'])
        return sorted([m, c, svc, n, s] for (m, c, svc), (n, s) in f.items())

    # -- alerts (SPEC 1.2 "Budgets and alerts") ---------------------------------
    def walk(self, month):
        """customer -> [(call, included s, overage s, holder, pool s)] of the
        month, every service, in (started_at, usage_id) order."""
        per = {}
        for c, svc in sorted(set((k['customer'], k['service']) for k in self.calls if month_of(k['at']) == month)):
            for k, o, h in self.attribute(c, svc, month):
                per.setdefault(c, []).append((k, k['d'] - o, o, h, self.pool_s(c, svc, k['at'])))
        for rows in per.values():
            rows.sort(key=lambda x: (x[0]['at'], x[0]['id']))
        return per

    def pool_alerts(self, month, walk):
        """Per (customer, service): the first call at which the month's
        included seconds (that call's included part counted) reach 80 % and
        100 % of the pool at the call's start, the pool being > 0.  Partner:
        the holder's at that instant, or None; value: the included minutes
        then; limit: the pool in minutes then."""
        out = []
        for c, rows in sorted(walk.items()):
            for svc in SERVICES:
                included = 0
                todo = [Decimal(80), Decimal(100)]
                for k, inc, _, h, pool in rows:
                    if k['service'] != svc:
                        continue
                    included += inc
                    for th in list(todo):
                        if pool > 0 and included * 100 >= th * pool:
                            todo.remove(th)
                            out.append(alert_row(month, 'pool', self.subs[h[0]]['partner'] if h else None, c,
                                                 svc, th, Decimal(minutes6(included)), Decimal(minutes6(pool)),
                                                 k['at']))
        return out

    def rated_before(self, month, c):
        """(the latest start of customer c's calls of the month rated at
        the month's previous rating, or None; whether a budget for c was set
        since that rating)"""
        ids, nsets = self.last_rating.get(month, (set(), 0))
        old = [k['at'] for k in self.calls if k['customer'] == c and k['id'] in ids]
        return (max(old) if old else None), c in self.budget_sets[nsets:]

    def budget_alerts(self, month, walk):
        """Per budget (partner, customer): the partner's overage amount for
        the customer in the month -- its charge lines (every service) in the
        budget's currency, each rounded as a charge line is -- followed call
        by call in (started_at, usage_id) order; each threshold is raised at
        the first call after which amount >= threshold % of the budget."""
        out = []
        for (p, c), b in sorted(self.budgets.items()):
            lines = {}
            amount = Decimal('0.00')
            todo = list(b['thresholds'])
            # the calls that bill p in the budget's currency, by instant
            steps = []
            for k, _, o, h, _ in walk.get(c, []):
                if o == 0 or h is None or self.subs[h[0]]['partner'] != p:
                    continue
                price, cur = self.price(c, k['service'], k)
                if cur != b['currency']:
                    continue
                if not steps or steps[-1][0] != k['at']:
                    steps.append((k['at'], []))
                steps[-1][1].append((k['service'], (k['service'], h, price), o, price))
            for at, calls in steps:
                if not todo:
                    break
                # SPEC orders the calls of one (customer, service); calls of
                # several services that start at the same instant have no
                # order, so the amount at a crossing among them is any one an
                # order of them (each service's own kept) gives.
                orders = interleavings(calls)
                values = {}
                for order in orders:
                    ls, amt, left = dict(lines), amount, list(todo)
                    for _, g, o, price in order:
                        before = Decimal(amount2(ls.get(g, 0), price))
                        ls[g] = ls.get(g, 0) + o
                        amt += Decimal(amount2(ls[g], price)) - before
                        for th in list(left):
                            if amt * 100 >= th * b['amount']:
                                left.remove(th)
                                values.setdefault(th, set()).add(amt)
                for _, g, o, price in calls:
                    before = Decimal(amount2(lines.get(g, 0), price))
                    lines[g] = lines.get(g, 0) + o
                    amount += Decimal(amount2(lines[g], price)) - before
                for th in sorted(values):
                    todo.remove(th)
                    v = values[th]
                    out.append(alert_row(month, 'budget', p, c, None, th,
                                         v.pop() if len(v) == 1 else frozenset(v), b['amount'], at))
            # A crossing at or before the latest call the month's previous
            # rating had rated (a late call, a dated change before rated
            # calls): the extension counts the customer's groups that this
            # rating does not walk again at their whole rated amount ("as
            # rated so far") under the calls it walks, so the call it finds
            # may be earlier than the one in time order, and its value
            # larger.  A crossing after that call is exact: all that was
            # rated before precedes it, so "as rated so far" is time order
            # there; and so is all of it when a budget of the customer was
            # set since (README: the rating then goes over the customer's
            # groups from the start).  Where not exact, the model checks the
            # key (raised at all, and once), the limit, that the value
            # reached the threshold and is at most the amount of the month
            # so far, and that crossed_at is the start of a call that bills
            # the partner in the currency.  METER_STRICT_BUDGET=1 compares
            # them exactly too.
            last, reset = self.rated_before(month, c)
            if not self.strict_budget and last is not None and not reset:
                instants = frozenset(at.strftime('%Y-%m-%d %H:%M:%S.%f') for at, _ in steps)
                lastf = last.strftime('%Y-%m-%d %H:%M:%S.%f')
                for i, row in enumerate(out):
                    if row[1] == 'budget' and row[2] == p and row[3] == c and row[8] <= lastf:
                        out[i] = row[:6] + (Bounds(row[5] * b['amount'] / 100, amount), row[7], instants)
        return out

    def rate(self, months):
        """A rating of the months (rate_pending: every open month; a close:
        its month): the alerts the data now crosses, stored unless their key
        is stored already.  Returns (stored, skipped with other figures)."""
        new, moved = [], []
        for mo in months:
            walk = self.walk(mo)
            self.last_rating_next = (set(k['id'] for k in self.calls if month_of(k['at']) == mo),
                                     len(self.budget_sets))
            for row in self.pool_alerts(mo, walk) + self.budget_alerts(mo, walk):
                key = alert_key(row)
                if key not in self.alerts:
                    self.alerts[key] = row
                    new.append(row)
                elif self.alerts[key] != row:
                    moved.append(row)
            self.last_rating[mo] = self.last_rating_next
        return new, moved

    def budget_currencies(self, p, c, now):
        """set_budget's currency (README "Budgets and alerts", Currency): of
        every service of the SKUs of the partner's licences for the customer
        (cancelled ones too), the price of the customer's market in effect
        now, else the service's own (USD)."""
        svcs = set()
        for s in self.subs.values():
            if s['kind'] == 'license' and s['partner'] == p and s['customer'] == c:
                svcs |= set(SKUS[s['product']][1])
        return sorted(set(self.price(c, svc, {'at': now, 'd': 0}) [1] for svc in (svcs or SERVICES)))

    def set_budget(self, p, c, amount, thresholds, now):
        if not any(s['partner'] == p and s['customer'] == c for s in self.subs.values()):
            return '55000'                                  # never bought for the customer
        if amount <= 0 or not 1 <= len(thresholds) <= 5 or len(set(thresholds)) != len(thresholds) \
                or any(not 0 < t <= 1000 for t in thresholds):
            return '22023'
        curs = self.budget_currencies(p, c, now)
        if len(curs) != 1:
            return '22023'
        self.budgets[(p, c)] = {'amount': amount, 'currency': curs[0], 'thresholds': sorted(thresholds)}
        self.budget_sets.append(c)
        return None

    def remove_budget(self, p, c):
        if not any(s['partner'] == p and s['customer'] == c for s in self.subs.values()):
            return '55000'                                  # checked first, as for set_budget
        if (p, c) not in self.budgets:
            return '42704'
        del self.budgets[(p, c)]
        return None

    def delete_party(self, kind, key):
        """DELETE of a customer or a service (1.2): one with calls is kept
        (23503, "has calls"); else one still referenced is kept by its
        foreign keys (23503: a customer's subscriptions and budgets, a
        service's SKUs -- every service is in one); else it goes.  Returns
        (sqlstate, why) with why 'calls', 'references' or None."""
        col = 'customer' if kind == 'customer' else 'service'
        if any(k[col] == key for k in self.calls):
            return '23503', 'calls'
        if kind == 'service' or any(s['customer'] == key for s in self.subs.values()) \
                or any(c == key for _, c in self.budgets):
            return '23503', 'references'
        return None, None

    # -- the API (the operator's calls); each returns None or the SQLSTATE
    # it must fail with, and changes the model only on success.
    def purchase(self, p, c, product, qty, t, lic, overage_sub):
        self.subs[lic] = {'partner': p, 'customer': c, 'kind': 'license', 'product': product,
                          'created': t, 'ended': None, 'qhist': [(t, qty)]}
        if SKUS[product][0]:
            for svc in sorted(SKUS[product][1]):
                if (c, svc) not in self.holders:          # first-in, once ever
                    self.holders[(c, svc)] = [(t, overage_sub, None)]

    def add_target(self, p, c, kind, sub, t):
        self.subs[sub] = {'partner': p, 'customer': c, 'kind': kind, 'product': None,
                          'created': t, 'ended': None, 'qhist': []}

    def set_quantity(self, sub, qty, t):
        s = self.subs[sub]
        if s['ended'] is not None:
            return '55000'
        s['qhist'].append((t, qty))
        return None

    def cancel(self, sub, t):
        s = self.subs[sub]
        if s['ended'] is not None:
            return '55000'
        if any(h[-1][1] == sub for h in self.holders.values()):
            return '55000'
        s['ended'] = t
        if s['kind'] == 'license' and SKUS[s['product']][0]:
            p, c = s['partner'], s['customer']
            for svc in sorted(SKUS[s['product']][1]):
                h = self.current_holder(c, svc)
                if h is not None and self.subs[h]['partner'] == p and not self.eligible(p, c, svc, t):
                    self.holders[(c, svc)].append((t, None, None))   # automatic release
        return None

    def assign(self, p, c, svc, sub, t, reseller=None):
        cur = self.current_holder(c, svc)
        if cur == sub and self.subs[sub]['partner'] == p and self.current_reseller(c, svc) == reseller:
            return None                                     # no change, nothing logged
        if reseller == p:
            return '22023'                                  # its own reseller
        if not self.eligible(p, c, svc, t):
            return 'OV001'
        s = self.subs[sub]
        if s['partner'] != p or s['customer'] != c or s['kind'] not in ('overage', 'azure_subscription') \
                or not self.active(s, t):
            return 'OV003'
        if cur is not None and self.subs[cur]['partner'] != p:
            return 'OV002'
        self.holders.setdefault((c, svc), []).append((t, sub, reseller))
        return None

    def release(self, p, c, svc, t):
        cur = self.current_holder(c, svc)
        if cur is None:
            return None                                     # None already: no-op
        if self.subs[cur]['partner'] != p:
            return 'OV004'
        self.holders[(c, svc)].append((t, None, None))
        return None


def line_key(line):
    return tuple('' if x is None else str(x) for x in line)


def alert_row(month, kind, partner, customer, service, threshold, value, limit, crossed_at):
    """An overage.alert row as the model compares it: every column but
    alert_id and raised_at; the numbers as values (Decimal)."""
    return (month.isoformat(), kind, partner, customer, service, Decimal(threshold),
            value if isinstance(value, frozenset) else Decimal(value),
            Decimal(limit), crossed_at.strftime('%Y-%m-%d %H:%M:%S.%f'))


def interleavings(calls):
    """The orders of calls (service, ...) that keep each service's calls in
    their order: one when they are of one service."""
    by = {}
    for x in calls:
        by.setdefault(x[0], []).append(x)
    if len(by) == 1:
        return [calls]
    out = []

    def walk(prefix, rest):
        if len(out) > 5000:
            raise RuntimeError('too many orders of %d calls at one instant' % len(calls))
        if not any(rest.values()):
            out.append(prefix)
            return
        for svc, xs in sorted(rest.items()):
            if xs:
                walk(prefix + [xs[0]], dict(rest, **{svc: xs[1:]}))
    walk([], by)
    return out


class Bounds:
    """A value the model bounds instead of knowing: lo <= value <= hi."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __contains__(self, v):
        return self.lo <= v <= self.hi

    def __eq__(self, other):
        return isinstance(other, Bounds) and (self.lo, self.hi) == (other.lo, other.hi)

    def __hash__(self):
        return hash((self.lo, self.hi))

    def __repr__(self):
        return 'between(%s, %s)' % (self.lo, self.hi)


def alert_match(model, db):
    """The model's row and the database's agree: every column equal, but a
    value the model leaves open must be one of its values: a set (calls of
    several services tied at the crossing instant), Bounds, or for
    crossed_at a set of instants (out of order, budget_alerts)."""
    for i, (m, d) in enumerate(zip(model, db)):
        if i in (6, 8) and isinstance(m, (frozenset, Bounds)):
            if d not in m:
                return False
        elif m != d:
            return False
    return True


def alert_key(row):
    """(month, kind, partner, customer, service, threshold): stored once"""
    return row[:6]


class Scenario:
    def __init__(self, psql, seed, steps, rule='1.2'):
        self.db = psql
        self.seed = seed
        self.r = random.Random(seed)
        self.steps = steps
        self.step_no = 0
        self.history = []
        self.stats = {}
        r = self.r
        y, mo = FIRST_MONTHS[seed % len(FIRST_MONTHS)]
        m1 = datetime.date(y, mo, 1)
        self.months = [m1] if r.random() < 0.25 else [m1, next_month(m1)]
        self.start = as_instant(self.months[0])
        self.end = as_instant(next_month(self.months[-1]))     # exclusive
        self.partners = ['P%d' % i for i in range(1, r.choice([2, 3, 3]) + 1)]
        self.customers = ['C%d' % i for i in range(1, r.choice([2, 3, 4]) + 1)]
        minutes = {}
        for product, (_, svcs) in SKUS.items():
            for svc in svcs:
                minutes[(product, svc)] = 0 if svc == 'payg' else r.choice([1, 2, 5, 10, 15, 30, 45])
        prices = {}
        for svc in SERVICES:
            prices[svc] = r.choice([Decimal('0.02'), Decimal('0.0125'), Decimal('0.1'), Decimal('0'),
                                    Decimal('1.2345'), Decimal(r.randint(1, 99999)) / Decimal(10000),
                                    Decimal(r.randint(1, 9999)) / Decimal(10000)])
        # markets of the customers, and prices by market and date: 1-4
        # periods per (service, market), changing at random instants
        # inside the months; some end, leaving the service's own price
        markets = {c: r.choice(['US', 'US', 'SE', 'DE', 'us', None]) for c in self.customers}
        span = int((self.end - self.start).total_seconds())
        periods = {}
        self.price_instants = []
        for svc in SERVICES:
            for market, cur in (('US', 'USD'), ('SE', 'SEK'), ('DE', 'EUR')):
                if r.random() < 0.2:
                    continue
                cuts = sorted(set(self.start + datetime.timedelta(seconds=r.randrange(-5 * 86400, span))
                                  for _ in range(r.choice([1, 2, 2, 3, 4]))))
                ends = cuts[1:] + [None if r.random() < 0.7 else
                                   cuts[-1] + datetime.timedelta(seconds=r.randrange(3600, 20 * 86400))]
                periods[(svc, market)] = [
                    (a, b, r.choice([Decimal('0.03'), Decimal('0.25'), Decimal(r.randint(0, 99999)) / Decimal(10000)]),
                     cur) for a, b in zip(cuts, ends)]
                self.price_instants += [a for a in cuts] + [b for b in ends if b is not None]
        self.markets = markets
        self.model = Model(minutes, prices, rule, markets, periods)
        # a third of the timelines start days into the month, so that many
        # calls come before the customer's first licence (all overage; under
        # 1.1 those seconds also ate the pool bought later)
        late = r.random() < 0.35
        self.clock = self.start + datetime.timedelta(
            seconds=r.randrange(86400, 12 * 86400) if late else r.randrange(0, 6 * 3600))
        self.change_instants = []
        self.next_user = 0
        self.differ = False
        # budgets come from a random stream of their own, so that the rest
        # of each seed's timeline is the one it was before budgets
        self.rb = random.Random(seed * 7919 + 17)
        self.rd = random.Random(seed * 104729 + 5)      # delete attempts: a stream of their own
        self.rp = random.Random(seed * 104729 + 7)      # own-price round trips: one of their own
        # a 1.1 build has no alerts; nor has a Citus cluster (no live
        # rating there: README "Scaling out"), and budgets are left out
        self.alerts_checked = rule == '1.2' and os.environ.get('METER_LIVE_RATING', '1') != '0'
        self.moved = set()

    # -- reporting ----------------------------------------------------------
    def fail(self, what):
        lines = ['DISAGREEMENT in seed %d, step %d: %s' % (self.seed, self.step_no, what),
                 'catalog: minutes %r, prices %r' % (
                     sorted(self.model.minutes.items()),
                     sorted((k, str(v)) for k, v in self.model.prices.items())),
                 'last statements:']
        lines += ['  ' + h for h in self.history[-int(os.environ.get('METER_HISTORY', '25')):]]
        raise Disagreement('\n'.join(lines))

    def count(self, what):
        self.stats[what] = self.stats.get(what, 0) + 1

    def try_sql(self, sql):
        out = self.db.run("SELECT pg_temp.model_try(%s)" % ("$q$" + sql + "$q$"))
        if len(out) != 1:
            self.fail('unexpected psql output %r for %s' % (out, sql))
        res = json.loads(out[0])
        self.history.append('%s -> %s' % (sql, 'ok %s' % res['result'] if res['ok']
                                         else '%s (%s)' % (res['sqlstate'], res['message'])))
        return res

    def expect(self, sql, want_err):
        res = self.try_sql(sql)
        got = None if res['ok'] else res['sqlstate']
        if got != want_err:
            self.fail('%s: model expects %s, database says %s%s' % (
                sql, want_err or 'success', got or 'success',
                '' if res['ok'] else ' (%s)' % res['message']))
        return res

    def query_json(self, sql):
        out = self.db.run(sql)
        try:
            return json.loads(out[-1])
        except (ValueError, IndexError):
            self.fail('cannot read %s: %r' % (sql, out))

    # -- setup --------------------------------------------------------------
    def setup(self):
        m = self.model
        sql = ["DROP EXTENSION IF EXISTS overage CASCADE", "CREATE EXTENSION overage"]
        # the Citus test (test/scripts/citus.sh) distributes the tables here
        if os.environ.get('OVERAGE_AFTER_CREATE'):
            sql.append(os.environ['OVERAGE_AFTER_CREATE'])
        sql.append("INSERT INTO overage.service (service_id, name, unit_price) VALUES " + ", ".join(
            "(%s, %s, %s)" % (lit(s), lit('Service ' + s), lit(str(m.prices[s]))) for s in SERVICES))
        sql.append("INSERT INTO overage.sku (product_id, sku_id, title, tags) VALUES " + ", ".join(
            "(%s, '1', %s, %s)" % (lit(p), lit('SKU ' + p), lit(TAGS[p])) for p in SKUS))
        sql.append("INSERT INTO overage.sku_service VALUES " + ", ".join(
            "(%s, '1', %s, %d)" % (lit(p), lit(s), n) for (p, s), n in sorted(m.minutes.items())))
        sql.append("INSERT INTO overage.partner VALUES " + ", ".join(
            "(%s, %s)" % (lit(p), lit('Partner ' + p)) for p in self.partners))
        sql.append("INSERT INTO overage.customer VALUES " + ", ".join(
            "(%s, %s, %s)" % (lit(c), lit('Customer ' + c), lit(self.markets[c]) if self.markets[c] else 'NULL')
            for c in self.customers))
        rows = [(svc, mk, cur, price, a, b) for (svc, mk), ps in sorted(m.periods.items())
                for a, b, price, cur in ps]
        if rows:
            sql.append("INSERT INTO overage.service_price VALUES " + ", ".join(
                "(%s, %s, %s, %s, %s, %s)" % (lit(svc), lit(mk), lit(cur), lit(str(price)), tslit(a),
                                              tslit(b) if b else 'NULL')
                for svc, mk, cur, price, a, b in rows))
        for s in sql:
            out = self.db.run(s)
            if any('ERROR' in line for line in out):
                raise RuntimeError('setup failed: %s: %r' % (s, out))

    # -- the timeline ---------------------------------------------------------
    def open_months(self):
        return [mo for mo in self.months if mo not in self.model.closed]

    def advance(self):
        r = self.r
        step = r.choice([0, 0, 1, 60, 600, 3600, 4 * 3600, 86400, 86400, 2 * 86400])
        t = self.clock + datetime.timedelta(seconds=step)
        if t >= self.end:
            return None
        self.clock = t
        return t

    def api_step(self):
        r, m = self.r, self.model
        t = self.advance()
        if t is None:
            return self.usage_step()
        self.change_instants.append(t)
        # in creation order (not by uuid: the seed alone decides the scenario)
        licences = [k for k, s in m.subs.items() if s['kind'] == 'license']
        live = [k for k in licences if m.subs[k]['ended'] is None]
        op = r.choices(['purchase', 'set_quantity', 'cancel', 'azure', 'assign', 'release'],
                       [28, 22, 12, 5, 19, 14])[0]
        if op != 'purchase' and not licences:
            op = 'purchase'
        if op == 'purchase':
            p, c = r.choice(self.partners), r.choice(self.customers)
            product = r.choice(sorted(SKUS))
            qty = r.choice([1, 1, 2, 3, 5])
            res = self.expect("SELECT overage.purchase(%s, %s, %s, '1', %d, %s)::text"
                              % (lit(p), lit(c), lit(product), qty, tslit(t)), None)
            lic = res['result']
            overage_sub = m.prov.get((p, c))
            if SKUS[product][0] and overage_sub is None:
                rows = self.query_json(
                    "SELECT json_agg(json_build_array(kind, subscription_id)) FROM overage.subscription"
                    " WHERE partner_id = %s AND customer_id = %s AND kind IN ('overage', 'azure_subscription')"
                    % (lit(p), lit(c)))
                kinds = sorted(k for k, _ in rows)
                if kinds != ['azure_subscription', 'overage']:
                    self.fail('first overage purchase of %s for %s provisioned %r' % (p, c, rows))
                for kind, sub in sorted(rows):
                    m.add_target(p, c, kind, sub, t)
                    if kind == 'overage':
                        m.prov[(p, c)] = overage_sub = sub
            m.purchase(p, c, product, qty, t, lic, overage_sub)
            self.count('purchase ok')
        elif op == 'set_quantity':
            sub = r.choice(live if live and r.random() < 0.9 else licences)
            qty = r.choice([1, 2, 3, 4, 6, 10])
            err = m.set_quantity(sub, qty, t)
            self.expect("SELECT overage.set_quantity(%s, %d, %s)::text" % (lit(sub), qty, tslit(t)), err)
            self.count('set_quantity %s' % (err or 'ok'))
        elif op == 'cancel':
            sub = r.choice(live if live and r.random() < 0.9 else licences)
            if r.random() < 0.1:
                held = [h[-1][1] for h in m.holders.values() if h[-1][1]]
                sub = r.choice(held) if held else sub
            err = m.cancel(sub, t)
            self.expect("SELECT overage.cancel(%s, %s)::text" % (lit(sub), tslit(t)), err)
            self.count('cancel %s' % (err or 'ok'))
        elif op == 'azure':
            if not m.prov:
                return
            p, c = r.choice(sorted(m.prov))
            res = self.expect("SELECT overage.create_azure_subscription(%s, %s, %s)::text"
                              % (lit(p), lit(c), tslit(t)), None)
            m.add_target(p, c, 'azure_subscription', res['result'], t)
            self.count('create_azure_subscription ok')
        elif op == 'assign':
            targets = [k for k, s in m.subs.items() if s['kind'] != 'license']
            if not targets:
                return
            if r.random() < 0.8:
                # mostly a partner with a live overage licence, to its own target
                cands = sorted(set((m.subs[k]['partner'], m.subs[k]['customer'], svc) for k in live
                                   if SKUS[m.subs[k]['product']][0] for svc in SKUS[m.subs[k]['product']][1]))
                if not cands:
                    return
                p, c, svc = r.choice(cands)
                own = [k for k in targets if m.subs[k]['partner'] == p and m.subs[k]['customer'] == c]
                sub = r.choice(own) if own else r.choice(targets)
            else:
                sub = r.choice(targets)
                p, c, svc = r.choice(self.partners), r.choice(self.customers), r.choice(SERVICES)
            # two-tier: now and then for an indirect reseller (any partner row)
            reseller = r.choice(self.partners) if r.random() < 0.3 else None
            err = m.assign(p, c, svc, sub, t, reseller)
            self.expect("SELECT overage.assign_overage(%s, %s, %s, %s, %s, %s)::text"
                        % (lit(p), lit(c), lit(svc), lit(sub), tslit(t),
                           lit(reseller) if reseller else 'NULL'), err)
            self.count('assign_overage %s' % (err or 'ok'))
        else:
            keys = sorted(k for k, h in m.holders.items() if h[-1][1] is not None)
            if keys and r.random() < 0.8:
                c, svc = r.choice(keys)
                holder_p = m.subs[m.current_holder(c, svc)]['partner']
                p = holder_p if r.random() < 0.85 else r.choice(self.partners)
            else:
                p, c, svc = r.choice(self.partners), r.choice(self.customers), r.choice(SERVICES)
            err = m.release(p, c, svc, t)
            self.expect("SELECT overage.release_overage(%s, %s, %s, %s)::text"
                        % (lit(p), lit(c), lit(svc), tslit(t)), err)
            self.count('release_overage %s' % (err or 'ok'))

    def call_instant(self, months):
        r, m = self.r, self.model
        kind = r.random()
        ties = [k['at'] for k in m.calls if month_of(k['at']) in months]
        changes = [t for t in self.change_instants if month_of(t) in months]
        prices = [t for t in self.price_instants if month_of(t) in months]
        if kind < 0.08 and prices:
            return r.choice(prices)                         # exactly at a price change
        if kind < 0.2 and changes:
            return r.choice(changes)                        # exactly at a change
        if kind < 0.35 and ties:
            return r.choice(ties)                           # tie on started_at
        if kind < 0.45 and self.months[0] in months:
            # before the first change of the timeline (before any licence):
            # pools that grow after overage are where 1.1 and 1.2 differ
            first = min(self.change_instants) if self.change_instants else self.clock
            lo = as_instant(self.months[0])
            span = int((min(first, as_instant(next_month(self.months[0]))) - lo).total_seconds())
            if span > 0:
                return lo + datetime.timedelta(seconds=r.randrange(span))
        if kind < 0.50:
            mo = r.choice(months)
            edge = as_instant(mo) if r.random() < 0.5 else \
                as_instant(next_month(mo)) - datetime.timedelta(microseconds=1)
            return edge                                     # month boundaries
        mo = r.choice(months)
        lo, hi = as_instant(mo), as_instant(next_month(mo))
        if kind < 0.75 and lo <= self.clock < hi:
            # around the timeline's present, where the changes are
            lo = max(lo, self.clock - datetime.timedelta(days=3))
        span = int((hi - lo).total_seconds())
        t = lo + datetime.timedelta(seconds=r.randrange(span))
        if r.random() < 0.15:
            t += datetime.timedelta(microseconds=r.randrange(1, 1000000))
        return t

    def usage_rows(self, n, months):
        r = self.r
        rows = []
        for _ in range(n):
            self.next_user += 1
            d = r.choice([1, 30, 59, 60, 61, 90, 300, 600, 900, 1200, 1800, 3600, 7200, 86400,
                          r.randint(1, 2400), r.randint(1, 2400)])
            rows.append({'customer': r.choice(self.customers), 'service': r.choice(SERVICES),
                         'user': 'u%d' % self.next_user, 'at': self.call_instant(months), 'd': d})
        return rows

    def insert_sql(self, rows):
        values = ", ".join("(%s, %s, %s, %s, %d)" % (lit(k['customer']), lit(k['service']), lit(k['user']),
                                                     tslit(k['at']), k['d']) for k in rows)
        return ("WITH ins AS (INSERT INTO overage.usage (customer_id, service_id, user_id, started_at, duration_s)"
                " VALUES %s RETURNING usage_id, user_id)"
                " SELECT coalesce(json_agg(json_build_array(user_id, usage_id)), '[]')::text FROM ins" % values)

    def usage_step(self):
        months = self.open_months()
        if not months:
            return self.invalid_usage_step()
        n = self.r.choice([1, 1, 1, 2, 3, 5, 8])
        rows = self.usage_rows(n, months)
        if n >= 2 and self.r.random() < 0.3:
            # out of order: the later half first, rated, then the earlier
            # half (late calls inside the rated stretch)
            rows.sort(key=lambda k: k['at'], reverse=True)
            halves = [rows[:n // 2], rows[n // 2:]]
            self.insert_rows(halves[0])
            self.rate_pending('between the halves of an out-of-order load')
            self.insert_rows(halves[1])
        else:
            self.insert_rows(rows)
        self.count('usage insert ok (%s rows)' % ('1' if n == 1 else 'multi'))
        self.stats['usage calls'] = self.stats.get('usage calls', 0) + n
        self.check_written()

    def insert_rows(self, rows):
        res = self.expect(self.insert_sql(rows), None)
        ids = dict(json.loads(res['result']))
        if len(ids) != len(rows):
            self.fail('INSERT of %d calls returned %r' % (len(rows), ids))
        for k in rows:
            k['id'] = ids[k['user']]
            self.model.calls.append(k)

    def rate_pending(self, why):
        """Live rating: the model knows nothing of it; every check that
        follows must agree whether and whenever it ran.  After it, every
        call of every open month is rated and no group is stale.
        METER_LIVE_RATING=0 (a Citus cluster, which has no live rating:
        README "Scaling out") leaves it out; the checks that follow are the
        same."""
        if os.environ.get('METER_LIVE_RATING', '1') == '0':
            self.count('rate_pending left out (no live rating)')
            return
        res = self.expect("SELECT overage.rate_pending()::text", None)
        if int(res['result']) < 0:
            self.fail('rate_pending returned %s' % res['result'])
        self.count('rate_pending %s' % why)
        self.model_rating(self.open_months(), 'rate_pending (%s)' % why)
        self.stats['calls (re)rated by rate_pending'] = \
            self.stats.get('calls (re)rated by rate_pending', 0) + int(res['result'])
        got = self.query_json(
            "SELECT coalesce(json_agg(json_build_array(month::text, calls, rated_calls, stale_groups)"
            " ORDER BY month), '[]') FROM overage.rating_status()")
        for month, calls, rated, stale in got:
            mo = datetime.date.fromisoformat(month)
            want = sum(1 for k in self.model.calls if month_of(k['at']) == mo)
            if calls != want:
                self.fail('rating_status(%s): %d calls, model %d' % (month, calls, want))
            if mo not in self.model.closed and (rated != calls or stale != 0):
                self.fail('rating_status(%s) right after rate_pending: %d of %d calls rated, %d stale groups'
                          % (month, rated, calls, stale))
        self.check_closed_status('right after rate_pending')

    def check_closed_status(self, when):
        """A closed month's lines are final: rating_status() shows every one
        of its calls rated and no stale group, whatever dated change
        reaches back into it (README "Live rating")."""
        got = self.query_json(
            "SELECT coalesce(json_agg(json_build_array(month::text, calls, rated_calls, stale_groups)"
            " ORDER BY month), '[]') FROM overage.rating_status()")
        for month, calls, rated, stale in got:
            if datetime.date.fromisoformat(month) in self.model.closed and (rated != calls or stale != 0):
                self.fail('rating_status(%s), a closed month, %s: %d of %d calls rated, %d stale groups'
                          % (month, when, rated, calls, stale))

    def own_price_step(self):
        """Now and then, once a month is closed (a stream of its own): a
        service's own price changed and changed back, two statements, each
        committed.  Each marks the service's groups of every month stale
        from the start; the prices the model knows do not change.  A closed
        month must still show no stale group."""
        rp, m = self.rp, self.model
        if not m.closed or rp.random() >= 0.05 or os.environ.get('METER_LIVE_RATING', '1') == '0':
            return
        svc = rp.choice(SERVICES)
        self.expect("UPDATE overage.service SET unit_price = unit_price + 0.01 WHERE service_id = %s"
                    " RETURNING unit_price::text"
                    % lit(svc), None)
        self.expect("UPDATE overage.service SET unit_price = %s WHERE service_id = %s"
                    " RETURNING unit_price::text"
                    % (lit(str(m.prices[svc])), lit(svc)), None)
        self.count('own price changed and back after a close')
        self.check_closed_status('after a change of the own price of %s' % svc)

    def invalid_usage_step(self):
        r = self.r
        months = self.open_months()
        kinds = ['customer', 'service', 'zero', 'long']
        if self.model.closed:
            kinds += ['closed', 'closed']
        kind = r.choice(kinds) if months else 'closed'
        rows = self.usage_rows(r.choice([0, 0, 1, 3]), months) if months else []
        self.next_user += 1
        bad = {'customer': r.choice(self.customers), 'service': r.choice(SERVICES),
               'user': 'bad%d' % self.next_user, 'd': r.randint(1, 600),
               'at': self.call_instant(months) if months else self.start}
        if kind == 'customer':
            bad['customer'], want = 'C99', '23503'
        elif kind == 'service':
            bad['service'], want = 'fax', '23503'
        elif kind == 'zero':
            bad['d'], want = 0, '23514'
        elif kind == 'long':
            bad['d'], want = r.choice([86401, 90000, 172800]), '22023'
        else:
            mo = r.choice(sorted(self.model.closed))
            bad['at'] = r.choice([as_instant(mo), as_instant(next_month(mo)) - datetime.timedelta(microseconds=1),
                                  as_instant(mo) + datetime.timedelta(seconds=r.randrange(28 * 86400))])
            want = 'OV006'
        rows.insert(r.randrange(len(rows) + 1), bad)
        self.expect(self.insert_sql(rows), want)
        self.count('usage refused %s' % want)
        self.check_written()

    def delete_step(self):
        """Now and then (a stream of its own): DELETE a customer or a
        service, undone at once when it goes through (the scenario keeps
        its parties), refused as the model says: "has calls" exactly when
        the party has calls, a foreign key's 23503 otherwise."""
        rd, m = self.rd, self.model
        if rd.random() >= 0.05 or os.environ.get('METER_DELETES', '1') == '0':
            return
        kind = 'customer' if rd.random() < 0.7 else 'service'
        key = rd.choice(self.customers if kind == 'customer' else SERVICES)
        # a change of the id is a delete of the old one (README "Ingest")
        verb = 'delete' if rd.random() < 0.7 else 'rename'
        want, why = m.delete_party(kind, key)
        change = ("DELETE FROM overage.%s WHERE %s_id = %s" % (kind, kind, lit(key))
                  if verb == 'delete' else
                  "UPDATE overage.%s SET %s_id = %s WHERE %s_id = %s"
                  % (kind, kind, lit(key + '-renamed'), kind, lit(key)))
        res = self.expect("DO $d$ BEGIN %s;"
                          " RAISE EXCEPTION 'undone' USING ERRCODE = 'P0001'; END $d$"
                          % change, want or 'P0001')
        if want and ('has calls' in res['message']) != (why == 'calls'):
            self.fail('%s of %s %s: model says kept for its %s, database says %s'
                      % (verb, kind, key, why, res['message']))
        self.count('%s %s %s' % (verb, kind, why or 'ok (undone)'))

    def budget_step(self):
        """Now and then (a stream of its own): set_budget -- the default
        thresholds or one to five of its own, an amount around the partner's
        overage amount so far or anything -- or remove_budget; a few that
        must be refused (never bought, several currencies, a bad amount or
        threshold, removing what is not there)."""
        rb, m = self.rb, self.model
        if not self.alerts_checked or rb.random() >= 0.06:
            return
        bought = sorted(set((s['partner'], s['customer']) for s in m.subs.values()))
        if rb.random() < 0.25 and m.budgets:
            p, c = rb.choice(sorted(m.budgets)) if rb.random() < 0.9 else \
                (rb.choice(self.partners), rb.choice(self.customers))
            err = m.remove_budget(p, c)
            self.expect("SELECT overage.remove_budget(%s, %s)::text" % (lit(p), lit(c)), err)
            self.count('remove_budget %s' % (err or 'ok'))
            return
        if bought and rb.random() < 0.92:
            p, c = rb.choice(bought)
        else:
            p, c = rb.choice(self.partners), rb.choice(self.customers)
        # the partner's overage amount for the customer in a month so far
        # (any currency): budgets near it cross as the month goes on
        mo = rb.choice(self.months)
        so_far = sum((Decimal(line[8]) for line in m.lines(mo) if line[1] == p and line[2] == c), Decimal(0))
        x = rb.random()
        if x < 0.5 and so_far > 0:
            amount = (so_far * Decimal(rb.choice(['0.3', '0.6', '0.9', '1', '1.1', '1.5', '2', '4']))
                      ).quantize(Decimal('0.01'))
        elif x < 0.97:
            amount = rb.choice([Decimal('0.01'), Decimal('0.5'), Decimal('3.00'), Decimal('25'), Decimal('100'),
                                Decimal('999.99'), Decimal(rb.randint(1, 500000)) / Decimal(100)])
        else:
            amount = rb.choice([Decimal(0), Decimal('-1')])
        if amount == 0 and x < 0.5:
            amount = Decimal('0.01')
        if rb.random() < 0.4:
            thresholds, arg = [Decimal(50), Decimal(80), Decimal(100)], ''
        else:
            pick = [Decimal(t) for t in ('0.5', '10', '25', '50', '75.5', '80', '90', '100', '100.25', '150',
                                         '300', '1000')]
            thresholds = rb.sample(pick, rb.choice([1, 1, 2, 3, 4, 5]))
            if rb.random() < 0.03:
                thresholds.append(rb.choice([Decimal(0), Decimal('1000.01'), thresholds[0]]))
            arg = ", '{%s}'" % ','.join(str(t) for t in thresholds)
        err = m.set_budget(p, c, amount, thresholds, datetime.datetime.now(UTC))
        self.expect("SELECT overage.set_budget(%s, %s, %s%s)::text" % (lit(p), lit(c), amount, arg), err)
        self.count('set_budget %s' % (err or 'ok'))
        if err is None:
            got = self.query_json("SELECT json_build_array(amount::text, currency, thresholds::text[])"
                                  " FROM overage.budget WHERE partner_id = %s AND customer_id = %s"
                                  % (lit(p), lit(c)))
            b = m.budgets[(p, c)]
            if got is None or Decimal(got[0]) != b['amount'] or got[1] != b['currency'] \
                    or [Decimal(t) for t in got[2]] != b['thresholds']:
                self.fail('budget of %s for %s: model %r, database %r' % (p, c, b, got))

    def model_rating(self, months, why):
        """The model's side of a rating; then overage.alert must hold
        exactly the alerts the model stored."""
        if not self.alerts_checked:
            return
        new, moved = self.model.rate(months)
        for row in new:
            self.count('alerts %s %s raised' % (row[1], 'without holder' if row[2] is None else 'with partner'))
            if isinstance(row[6], Bounds):
                self.count('alerts budget raised out of order (bounded)')
            elif isinstance(row[6], frozenset):
                self.count('alerts budget at a tie of services (value one of several)')
            if any(k[:2] == row[:2] and k[3:6] == row[3:6] and k[2] != row[2] for k in self.model.alerts):
                self.count('alerts for the same threshold with another partner')
        for row in moved:
            if alert_key(row) not in self.moved:
                self.moved.add(alert_key(row))
                self.count('alerts re-crossed at other figures, first kept (%s)' % row[1])
        self.check_alerts(why)

    def check_alerts(self, why):
        """overage.alert, every column but alert_id and raised_at, must be
        the model's store: for each (month, kind, partner, customer,
        service, threshold) the alert as the first rating that crossed it
        found it (SPEC: raised exactly once, never withdrawn nor changed),
        none else.  Exact also after late calls and dated changes: each
        rating is modelled as a full evaluation of the data then, so a
        crossing that moves keeps its first row and one that moves to
        another holder is a new key."""
        if not self.alerts_checked:
            return
        got = self.query_json(
            "SELECT coalesce(json_agg(json_build_array(month::text, kind, partner_id, customer_id, service_id,"
            " threshold::text, value::text, limit_value::text,"
            " to_char(crossed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'))), '[]') FROM overage.alert")
        got = sorted((tuple(r[:5]) + tuple(Decimal(x) for x in r[5:8]) + (r[8],) for r in got), key=line_key)
        want = sorted(self.model.alerts.values(), key=line_key)
        gk = dict((alert_key(r), r) for r in got)
        if len(gk) != len(got) or len(got) != len(want) or \
                any(alert_key(r) not in gk or not alert_match(r, gk[alert_key(r)]) for r in want):
            diff = []
            for r in want:
                if alert_key(r) not in gk:
                    diff.append('  missing  %r' % (r,))
                elif not alert_match(r, gk[alert_key(r)]):
                    diff.append('  model    %r\n  database %r' % (r, gk[alert_key(r)]))
            wk = set(alert_key(r) for r in want)
            diff += ['  extra    %r' % (r,) for r in got if alert_key(r) not in wk]
            if len(got) != len(gk):
                diff.append('  (the database holds a key twice)')
            self.fail('overage.alert %s differs (month, kind, partner, customer, service, threshold, value,'
                      ' limit, crossed_at):\n%s' % (why, '\n'.join(diff)))
        self.count('alert checks')

    # -- checks ---------------------------------------------------------------
    def check_written(self):
        # the figures of the calls: taken in by the rating (usage_month)
        # or pending (usage_pending), summed per group
        got = self.query_json(
            "SELECT json_build_array((SELECT count(*) FROM overage.usage),"
            " (SELECT coalesce(json_agg(json_build_array(month::text, c, s, calls, seconds)"
            "  ORDER BY month, c, s), '[]') FROM"
            "  (SELECT month, c, s, sum(calls)::int8 AS calls, sum(seconds)::int8 AS seconds FROM"
            "   (SELECT month, customer_id AS c, service_id AS s, calls, seconds FROM overage.usage_month"
            "    UNION ALL SELECT p.month, u.c, u.s, u.n, u.secs FROM overage.usage_pending p,"
            "     unnest(p.customer_id, p.service_id, p.calls, p.seconds) AS u(c, s, n, secs)) f"
            "   GROUP BY 1, 2, 3) g))")
        if got[0] != len(self.model.calls):
            self.fail('overage.usage has %d rows, model %d' % (got[0], len(self.model.calls)))
        want = self.model.usage_figures()
        if got[1] != want:
            self.fail('usage figures differ:\n  model    %r\n  database %r' % (want, got[1]))

    def check_pool(self):
        r, m = self.r, self.model
        probes = []
        for c in self.customers:
            for svc in SERVICES:
                for _ in range(3):
                    x = r.random()
                    calls = [k['at'] for k in m.calls if k['customer'] == c and k['service'] == svc]
                    if x < 0.3 and self.change_instants:
                        t = r.choice(self.change_instants)
                    elif x < 0.6 and calls:
                        t = r.choice(calls)
                    elif x < 0.7:
                        t = as_instant(r.choice(self.months))
                    else:
                        span = int((self.end - self.start).total_seconds())
                        t = self.start + datetime.timedelta(seconds=r.randrange(span))
                    probes.append((c, svc, t))
        values = ", ".join("(%d, %s, %s, %s)" % (i, lit(c), lit(svc), tslit(t))
                           for i, (c, svc, t) in enumerate(probes))
        got = self.query_json(
            "SELECT json_agg(json_build_array(v.i, p.month::text, p.pool_minutes::text, p.used_minutes::text,"
            " p.remaining_minutes::text, p.overage_minutes::text, p.unassigned_minutes::text) ORDER BY v.i)"
            " FROM (VALUES %s) v(i, c, s, t), LATERAL overage.pool_status(v.c, v.s, v.t) p" % values)
        if len(got) != len(probes):
            self.fail('pool_status returned %d rows for %d probes' % (len(got), len(probes)))
        for row, (c, svc, t) in zip(got, probes):
            want = m.pool_status(c, svc, t)
            if m.pool_status(c, svc, t, rule='1.1' if m.rule == '1.2' else '1.2') != want:
                self.count('pool_status probes where 1.1 and 1.2 differ')
            if row[1:] != want:
                self.fail('pool_status(%s, %s, %s) [month, pool, used, remaining, overage, unassigned]:'
                          '\n  model    %r\n  database %r' % (c, svc, tslit(t), want, row[1:]))
            self.count('pool_status probes')

    LINE_COLS = ("month::text, partner_id, customer_id, service_id, subscription_id::text, overage_seconds,"
                 " quantity::text, unit_price::text, amount::text, currency, reseller_id")

    def db_lines(self, source):
        got = self.query_json("SELECT coalesce(json_agg(json_build_array(%s)), '[]') FROM %s"
                              % (self.LINE_COLS, source))
        for line in got:
            line[7] = Decimal(line[7])      # unit_price: compare the value
        return sorted(got, key=line_key)

    def check_preview(self, mo):
        want = self.model.lines(mo)
        # any date names its month
        day = mo + datetime.timedelta(days=self.r.choice([0, 0, 14, (next_month(mo) - mo).days - 1]))
        got = self.db_lines("overage.preview_month('%s')" % day.isoformat())
        if got != want:
            self.fail('preview_month(%s) differs:\n  model    %s\n  database %s'
                      % (mo, fmt_lines(want), fmt_lines(got)))
        if mo not in self.model.closed:
            n = self.query_json("SELECT count(*) FROM overage.charge WHERE month = '%s'" % mo.isoformat())
            if n != 0:
                self.fail('preview_month(%s) of an open month left %d charge lines' % (mo, n))
        self.count('preview_month checks')
        return want

    def close(self, mo):
        m = self.model
        want = self.check_preview(mo)
        other = m.lines(mo, rule='1.1' if m.rule == '1.2' else '1.2')
        if other != want:
            self.count('months closed where 1.1 and 1.2 differ')
            self.differ = True
            self.stats['overage seconds 1.1 minus 1.2'] = self.stats.get('overage seconds 1.1 minus 1.2', 0) + (
                sum(line[5] for line in other) - sum(line[5] for line in want)) * (1 if m.rule == '1.2' else -1)
        # the reconciliation file of an open month is refused
        self.expect("SELECT count(*)::text FROM overage.reconciliation(%s, '%s')"
                    % (lit(self.partners[0]), mo.isoformat()), 'OV007')
        res = self.expect("SELECT overage.close_month('%s')::text" % (mo + datetime.timedelta(days=9)).isoformat(),
                          None)
        if int(res['result']) != len(want):
            self.fail('close_month(%s) returned %s, model has %d lines' % (mo, res['result'], len(want)))
        self.model_rating([mo], 'close_month(%s)' % mo)
        m.closed.add(mo)
        for line in want:
            self.count('charge lines %s' % ('unassigned' if line[1] is None else
                                            'billed for a reseller' if line[10] else 'billed'))
            self.count('charge lines in %s' % line[9])
        keys = [(line[1], line[2], line[3], line[4], line[10]) for line in want]
        self.stats['lines split by a price change'] = self.stats.get('lines split by a price change', 0) + \
            sum(1 for k in set(keys) if keys.count(k) > 1)
        self.stats['overage seconds'] = self.stats.get('overage seconds', 0) + sum(line[5] for line in want)
        calls = [k for k in m.calls if month_of(k['at']) == mo]
        self.stats['calls in closed months'] = self.stats.get('calls in closed months', 0) + len(calls)
        seen = {}
        for k in calls:
            seen[(k['customer'], k['service'], k['at'])] = seen.get((k['customer'], k['service'], k['at']), 0) + 1
        self.stats['calls tied on started_at'] = self.stats.get('calls tied on started_at', 0) + \
            sum(n for n in seen.values() if n > 1)
        changes = set(self.change_instants)
        self.stats['calls at a change instant'] = self.stats.get('calls at a change instant', 0) + \
            sum(1 for k in calls if k['at'] in changes)
        got = self.db_lines("overage.charge WHERE month = '%s'" % mo.isoformat())
        if got != want:
            self.fail('overage.charge of %s differs:\n  model    %s\n  database %s'
                      % (mo, fmt_lines(want), fmt_lines(got)))
        self.expect("SELECT overage.close_month('%s')::text" % mo.isoformat(), 'OV006')
        for p in self.partners:
            mine = [line for line in want if line[1] == p]
            last = (next_month(mo) - datetime.timedelta(days=1)).isoformat()
            # 1.2: Partner Center's daily rated usage layout; the holding
            # subscription is the entitlement, the reseller Tier2MpnId
            exp = sorted([line[2], line[4], 'Overage subscription' if m.subs[line[4]]['kind'] == 'overage'
                          else 'Azure subscription', mo.isoformat(), last, 'new', 'Overage',
                          'Service ' + line[3], 'Minute', line[7], line[6], line[8], line[9], line[10],
                          line[3], 'Azure plan']
                         for line in mine)
            rec = self.query_json(
                'SELECT json_build_array(coalesce(json_agg(json_build_array("CustomerId", "EntitlementId",'
                ' "EntitlementDescription", "ChargeStartDate"::text, "ChargeEndDate"::text, "ChargeType",'
                ' "MeterCategory", "MeterName", "Unit", "UnitPrice"::text, "Quantity"::text,'
                ' "BillingPreTaxTotal"::text, "BillingCurrency", "Tier2MpnId", "MeterId",'
                ' "SubscriptionDescription")), \'[]\'),'
                ' coalesce(sum("BillingPreTaxTotal"), 0)::text, count(*), bool_and("PartnerId" = %s))'
                ' FROM overage.reconciliation(%s, \'%s\')' % (lit(p), lit(p), mo.isoformat()))
            rows = rec[0]
            for row in rows:
                row[9] = Decimal(row[9])
            rows.sort(key=line_key)
            exp.sort(key=line_key)
            total = str(sum((Decimal(line[8]) for line in mine), Decimal('0.00')))
            if rows != exp or rec[2] != len(mine) or Decimal(rec[1]) != Decimal(total) or rec[3] is False:
                self.fail('reconciliation(%s, %s) differs (sum %s vs %s, count %d vs %d):\n'
                          '  model    %r\n  database %r' % (p, mo, total, rec[1], len(mine), rec[2], exp, rows))
            self.count('reconciliation files')
        self.count('months closed')

    # -- run ------------------------------------------------------------------
    def run(self):
        self.setup()
        r = self.r
        close_first_at = r.randrange(self.steps // 2, self.steps) if len(self.months) == 2 else None
        for self.step_no in range(1, self.steps + 1):
            x = r.random()
            if x < 0.42:
                # a dated change right after a rating, checked before any
                # call arrives: it must make the groups it touches stale
                around = r.random() < 0.3
                if around:
                    self.rate_pending('before a dated change')
                self.api_step()
                if around:
                    if os.environ.get('METER_LIVE_RATING', '1') != '0':
                        st = self.query_json("SELECT coalesce(sum(stale_groups), 0) FROM overage.rating_status()")
                        if st:
                            self.count('dated changes that made rated groups stale')
                    self.check_pool()
                    for mo in self.open_months():
                        self.check_preview(mo)
            elif x < 0.45:
                self.rate_pending('at a random step')
            elif x < 0.85:
                self.usage_step()
            elif x < 0.90:
                self.invalid_usage_step()
            elif x < 0.96:
                self.check_pool()
            else:
                for mo in self.open_months():
                    self.check_preview(mo)
            self.budget_step()
            self.delete_step()
            self.own_price_step()
            # no step but a rating raises an alert
            self.check_alerts('after step')
            # close the first month once the timeline has left it
            if close_first_at is not None and self.step_no >= close_first_at \
                    and self.months[0] not in self.model.closed and month_of(self.clock) != self.months[0]:
                self.close(self.months[0])
                # right after the close: a call at the next month's first instant
                # is accepted, one at the closed month's last instant refused
                edge = as_instant(self.months[1])
                self.next_user += 2
                ok = {'customer': self.customers[0], 'service': 'dom', 'user': 'u%d' % self.next_user,
                      'at': edge, 'd': 60}
                res = self.expect(self.insert_sql([ok]), None)
                ok['id'] = dict(json.loads(res['result']))[ok['user']]
                self.model.calls.append(ok)
                bad = dict(ok, user='u%d' % (self.next_user - 1), at=edge - datetime.timedelta(microseconds=1))
                self.expect(self.insert_sql([bad]), 'OV006')
                self.check_written()
        self.step_no += 1
        self.check_pool()
        for mo in self.open_months():
            self.close(mo)
        self.invalid_usage_step()
        self.check_pool()
        if self.differ:
            self.count('seeds where 1.1 and 1.2 lines differ')
        return len(self.model.calls)


def fmt_lines(lines):
    return ''.join('\n    %r' % (line,) for line in lines) or ' (none)'


def main():
    db = sys.argv[1]
    seeds = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 250
    first = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rule = os.environ.get('METER_RULE', '1.2')
    if rule not in ('1.1', '1.2'):
        print('METER_RULE must be 1.1 or 1.2')
        return 2
    psql = Psql(db)
    psql.run("SET client_min_messages = warning")
    psql.run("SET timezone = 'UTC'")
    psql.run("SET check_function_bodies = off")  # the extension comes per scenario
    psql.run(HELPERS)
    totals = {}
    calls = 0
    try:
        for seed in range(first, first + seeds):
            sc = Scenario(psql, seed, steps, rule)
            calls += sc.run()
            for k, v in sc.stats.items():
                totals[k] = totals.get(k, 0) + v
    except Disagreement as e:
        print(e)
        return 1
    finally:
        psql.close()
    print('%d seeds x %d steps agree with the model of rule %s (%d calls rated)' % (seeds, steps, rule, calls))
    for what, n in sorted(totals.items()):
        print('  %-40s %5d' % (what, n))
    return 0


if __name__ == '__main__':
    sys.exit(main())
