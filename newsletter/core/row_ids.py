"""The ids a URL or a form may name. Every id column is an INTEGER, so a larger number
names no row: it is turned away before it reaches a query, which PostgreSQL would
refuse with an error."""

MAX_ROW_ID = 2**31 - 1
