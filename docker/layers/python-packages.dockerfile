COPY --from=python-env /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
