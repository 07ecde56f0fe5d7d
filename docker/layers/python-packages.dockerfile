COPY --from=python-env /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    MPLBACKEND=Agg

# Matplotlib's font list, built once here for the fonts above; the venv's
# startup hook (docker/python/sandbox_startup.py) copies it onto the tmpfs
# when a container first starts python3, so the first import in a container
# does not rebuild it. Kept out of /opt/venv, which stays one layer.
RUN MPLCONFIGDIR=/opt/matplotlib-cache python3 -c 'import matplotlib.font_manager' \
    && test -n "$(ls /opt/matplotlib-cache)"
