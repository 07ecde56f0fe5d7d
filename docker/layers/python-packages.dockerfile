COPY --from=python-env /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    MPLBACKEND=Agg

# Matplotlib's font list, built once here for the fonts above and copied onto
# the tmpfs by docker/python/sandbox_startup.py when a container first starts
# python3: the first import in each container does not rebuild it.
RUN --mount=type=bind,source=python,target=/tmp/python \
    site=$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
    && cp /tmp/python/sandbox_startup.py /tmp/python/sandbox-startup.pth "$site/" \
    && python3 -m compileall -q "$site/sandbox_startup.py" \
    && MPLCONFIGDIR=/opt/venv/share/matplotlib-cache python3 -c 'import matplotlib.font_manager' \
    && test -n "$(ls /opt/venv/share/matplotlib-cache)"
