"""The `riposte` command line: an analyst's client of a running Riposte. Not part of the function app: nothing in
`shared` or `function_app.py` imports it, and `.funcignore` keeps it out of the deployed package."""
