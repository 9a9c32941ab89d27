/* src/updates/overage--1.1--1.2.sql: what the 1.1 catalog needs before the
 * definitions of 1.2 (src/<concern>.sql below the DEFINITIONS line), which
 * the Makefile appends to this file to make overage--1.1--1.2.sql. */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION overage UPDATE TO '1.2'" to load this file. \quit

/*
 * 1.1 kept the 1.0 implementations of the API in schema overage_internal
 * behind SECURITY DEFINER wrappers.  1.2 has one function per API call
 * that authorizes, checks and writes (the definitions replace the
 * wrappers' bodies); the implementations go.
 */
DROP FUNCTION overage_internal.purchase(text, text, text, text, integer, timestamptz);
DROP FUNCTION overage_internal.set_quantity(uuid, integer, timestamptz);
DROP FUNCTION overage_internal.cancel(uuid, timestamptz);
DROP FUNCTION overage_internal.create_azure_subscription(text, text, timestamptz);
DROP FUNCTION overage_internal.get_overage(text);
DROP FUNCTION overage_internal.assign_overage(text, text, text, uuid, timestamptz);
DROP FUNCTION overage_internal.release_overage(text, text, text, timestamptz);
DROP FUNCTION overage_internal.pool_status(text, text, timestamptz);
DROP FUNCTION overage_internal.preview_month(date);
DROP FUNCTION overage_internal.close_month(date);
DROP FUNCTION overage_internal.reconciliation(text, date);
DROP SCHEMA overage_internal;

