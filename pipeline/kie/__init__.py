"""Everything that speaks HTTP to Kie and to file hosts.

- `client`: the API client (createTask, recordInfo, download-url, credit, the catalog) and the
  error tree every caller reads (`KieError` and its retryable and permanent branches);
- `answers`: Kie's `{code, msg, data}` envelope read into answers or errors;
- `uploads`: the upload host's client (local files -> URLs Kie can fetch);
- `filehosts`: which hosts may receive the API key, and which result URLs may be fetched;
- `callbacks`: the receiver for Kie's task callbacks (`--listen`);
- `pacing`: sliding-window rate limiters and backoff.
Nothing outside this package opens an HTTP connection to Kie.
"""
