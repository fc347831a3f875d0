"""Azure adapters: the only place that imports an Azure SDK. One module per API; SDK imports happen inside
functions so importing this package (and function_app) stays cheap."""
