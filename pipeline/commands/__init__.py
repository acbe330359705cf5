"""One module per command; `cli.main` parses the arguments and calls one of them."""
