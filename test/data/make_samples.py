#!/usr/bin/env python3
"""
Writes the two sample inputs the tests and the demo load (deterministic:
run it again and the files do not change):

  price_list_sample.csv      a Partner Center new commerce license-based
                             price list: the real 19 columns and header,
                             our own rows (12 SKUs x 7 markets x terms and
                             billing plans, two SKUs with a price change
                             on 2026-10-15); Tags in both spellings of the
                             overage tag, any case, with spaces
  graph_pstn_calls_sample.json
                             a Microsoft Graph getPstnCalls response
                             ({"@odata.context", "@odata.count", "value":
                             [pstnCallLogRow...]}) with every property of
                             pstnCallLogRow, for one tenant in October
                             2026; the collector's retry delivered two
                             rows twice

Usage: python3 test/data/make_samples.py   (writes next to itself)
"""
import csv
import datetime
import json
import os
import random
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
r = random.Random(20261001)

COLUMNS = ['ProductTitle', 'ProductId', 'SkuId', 'SkuTitle', 'Publisher', 'SkuDescription',
           'UnitOfMeasure', 'TermDuration', 'BillingPlan', 'Market', 'Currency', 'UnitPrice',
           'PricingTierRangeMin', 'PricingTierRangeMax', 'EffectiveStartDate', 'EffectiveEndDate',
           'Tags', 'ERP Price', 'Segment']

# (product id, sku id, product title, sku title, tags, USD monthly list price per licence)
SKUS = [
    ('CFQ7TTC0LF8Q', '0002', 'Microsoft 365 E5', 'Microsoft 365 E5 with Calling Plan',
     'License;IncludeOverage', 61.00),
    ('CFQ7TTC0LF8Q', '0003', 'Microsoft 365 E5', 'Microsoft 365 E5 with Calling Plan (Pay as you go)',
     'License ; includesoverage', 57.00),
    ('CFQ7TTC0LFLX', '0001', 'Microsoft 365 E3', 'Microsoft 365 E3 with Domestic Calling Plan',
     'Telco', 44.00),
    ('CFQ7TTC0LFLX', '0004', 'Microsoft 365 E3', 'Microsoft 365 E3 with Calling Plan',
     ' Telco , IncludesOverage ', 47.50),
    ('CFQ7TTC0LH18', '0001', 'Microsoft 365 Business Basic', 'Microsoft 365 Business Basic',
     '', 6.00),
    ('CFQ7TTC0LH18', '0007', 'Microsoft 365 Business Basic', 'Microsoft 365 Business Basic Trial',
     'License; Trial', 0.00),
    ('CFQ7TTC0TP01', '0001', 'Teams Phone Standard', 'Teams Phone with Calling Plan (country zone 1)',
     'INCLUDEOVERAGE', 15.00),
    ('CFQ7TTC0TP01', '0002', 'Teams Phone Standard', 'Teams Phone with Calling Plan (country zone 2)',
     'IncludeOverage;Telco', 20.00),
    ('CFQ7TTC0TP02', '0001', 'Teams Domestic Calling Plan', 'Teams Domestic Calling Plan (120 min)',
     'Include Overage', 8.00),
    ('CFQ7TTC0TP02', '0002', 'Teams Domestic Calling Plan', 'Teams Domestic Calling Plan (3000 min)',
     'NoIncludeOverage', 12.00),
    ('CFQ7TTC0TP03', '0001', 'Teams International Calling Plan', 'Teams International Calling Plan',
     'Telco;  IncludesOverage', 24.00),
    ('CFQ7TTC0TP04', '0001', 'Teams Audio Conferencing', 'Teams Audio Conferencing with dial-out',
     'Telco,IncludeOverage,Conferencing', 4.00),
]
MARKETS = [('US', 'USD', 1.0), ('GB', 'GBP', 0.79), ('DE', 'EUR', 0.92), ('FI', 'EUR', 0.92),
           ('SE', 'SEK', 10.4), ('NO', 'NOK', 10.6), ('DK', 'DKK', 6.9)]
# (TermDuration, BillingPlan, factor of the monthly price per month of term)
TERMS = [('P1M', 'Monthly', 1.2), ('P1Y', 'Monthly', 1.0), ('P1Y', 'Annual', 12.0)]
START = '2026-09-01T00:00:00.0000000Z'
CHANGE = '2026-10-15T00:00:00.0000000Z'
END = '9999-11-30T23:59:59.0000000Z'
CHANGED = {('CFQ7TTC0TP01', '0001'), ('CFQ7TTC0LF8Q', '0002')}   # a price change on Oct 15


def price(v):
    return ('%.2f' % v).rstrip('0').rstrip('.') if v else '0'


def price_list():
    rows = []
    for pid, sid, ptitle, stitle, tags, usd in SKUS:
        for market, currency, rate in MARKETS:
            terms = TERMS if usd > 0 else [('P1M', 'None', 0.0)]
            if sid == '0001' and pid == 'CFQ7TTC0TP04':
                terms = TERMS[1:]          # no monthly term for this one
            for term, plan, factor in terms:
                base = usd * rate * (factor or 1)
                periods = [(START, END, base)]
                if (pid, sid) in CHANGED:
                    periods = [(START, CHANGE, base), (CHANGE, END, base * 1.05)]
                for start, end, unit in periods:
                    rows.append({
                        'ProductTitle': ptitle, 'ProductId': pid, 'SkuId': sid, 'SkuTitle': stitle,
                        'Publisher': 'Microsoft Corporation',
                        'SkuDescription': '%s for organisations that buy licences through a partner.' % stitle,
                        'UnitOfMeasure': '', 'TermDuration': term, 'BillingPlan': plan,
                        'Market': market, 'Currency': currency, 'UnitPrice': price(round(unit, 2)),
                        'PricingTierRangeMin': '', 'PricingTierRangeMax': '',
                        'EffectiveStartDate': start, 'EffectiveEndDate': end, 'Tags': tags,
                        'ERP Price': price(round(unit * 1.2, 2)), 'Segment': 'Commercial'})
    with open(os.path.join(HERE, 'price_list_sample.csv'), 'w', newline='') as f:
        w = csv.DictWriter(f, COLUMNS, quoting=csv.QUOTE_MINIMAL, lineterminator='\r\n')
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def guid():
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def calls():
    users = [(guid(), 'user%02d@tailspintoys.example' % i, 'User %02d' % i, '+4686%06d' % r.randrange(10**6))
             for i in range(1, 13)]
    kinds = [('user_out', 'Domestic', 50), ('user_out', 'International', 12), ('user_in', None, 25),
             ('user_out_conf', 'Domestic', 4), ('user_out_transfer', 'Domestic', 3),
             ('user_out_forwarding', 'International', 2), ('conf_in', None, 2), ('conf_out', 'Domestic', 2)]
    rows = []
    t0 = datetime.datetime(2026, 10, 1, tzinfo=datetime.timezone.utc)
    for _ in range(260):
        uid, upn, name, number = r.choice(users)
        ct, dc, _w = r.choices(kinds, [k[2] for k in kinds])[0]
        start = t0 + datetime.timedelta(seconds=r.randrange(31 * 86400), microseconds=r.randrange(10**6))
        dur = r.choice([r.randint(5, 300), r.randint(60, 1800), r.randint(600, 3600)])
        end = start + datetime.timedelta(seconds=dur)
        other = '+46%09d' % r.randrange(10**9) if dc != 'International' else \
            r.choice(['+4420%08d', '+4930%08d', '+1212%07d']) % r.randrange(10**7)
        inbound = ct in ('user_in', 'conf_in')
        rows.append({
            'id': guid(), 'callId': '%s-%s' % (guid()[:23], start.strftime('%Y%m%d')),
            'userId': uid, 'userPrincipalName': upn, 'userDisplayName': name,
            'startDateTime': start.strftime('%Y-%m-%dT%H:%M:%S.') + '%07dZ' % (start.microsecond * 10),
            'endDateTime': end.strftime('%Y-%m-%dT%H:%M:%S.') + '%07dZ' % (end.microsecond * 10),
            'duration': dur,
            'charge': 0 if inbound else round(dur / 60 * (0.02 if dc == 'Domestic' else 0.12), 2),
            'callType': ct,
            'currency': 'USD',
            'calleeNumber': number if inbound else other,
            'usageCountryCode': 'SE', 'tenantCountryCode': 'SE',
            'connectionCharge': 0,
            'callerNumber': other if inbound else number,
            'destinationContext': dc,
            'destinationName': None if inbound else ('Sweden' if dc == 'Domestic'
                                                     else r.choice(['United Kingdom', 'Germany', 'United States'])),
            'conferenceId': guid()[:8] if ct.startswith('conf') or ct == 'user_out_conf' else None,
            'licenseCapability': 'MCOPSTN1',
            'inventoryType': 'Subscriber',
            'operator': 'Microsoft',
            'callDurationSource': 'microsoft',
        })
    rows.sort(key=lambda x: x['startDateTime'])
    # the collector retried a page: two rows come again at the end
    rows += [dict(rows[10]), dict(rows[200])]
    doc = {'@odata.context':
           'https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.callRecords.pstnCallLogRow)',
           '@odata.count': len(rows), 'value': rows}
    with open(os.path.join(HERE, 'graph_pstn_calls_sample.json'), 'w') as f:
        json.dump(doc, f, indent=1)
        f.write('\n')
    return len(rows)


if __name__ == '__main__':
    print('price_list_sample.csv: %d rows; graph_pstn_calls_sample.json: %d rows' % (price_list(), calls()))
