"""Reports for supervisors and admins: how the customer base and the calls are doing.

Each report is a table (``columns`` and ``rows``) served as JSON or CSV under
``/api/reports/...`` and drawn by the reports page (``/reports``):

- ``retention``: retention and defection by month and by segment (``defection`` the rule,
  ``customer_base`` the refresh that materialises it, ``customer_tables`` the reading);
- ``value``: the value of the customer base (sum of forecast CLV) per day;
- ``offers``: offers made in calls, offered → accepted, by product and by agent
  (``call_reports``, aggregate queries over the wrap-ups);
- ``satisfaction``: the satisfaction trend by queue and by agent.
"""
