# Copied in a RUN step rather than by COPY, so that scrub also gives /opt,
# whose entry list the copy changes, the base's time. Debian's pycairo (from
# layers/office), package and metadata, is linked in: no start-up work, and
# `pip check` sees rlPyCairo's requirement met.
RUN --mount=type=bind,from=python-env,source=/opt/venv,target=/tmp/venv \
    --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    cp -a /tmp/venv /opt/venv \
    && ln -s /usr/lib/python3/dist-packages/cairo /usr/lib/python3/dist-packages/pycairo-*.dist-info \
        /opt/venv/lib/python3*/site-packages/ \
    && scrub
ENV PATH=/opt/venv/bin:$PATH \
    MPLBACKEND=Agg

# Matplotlib's font list, built once here for the fonts above; the venv's
# startup hook (docker/python/sandbox_startup.py) copies it onto the tmpfs
# when a container first starts python3, so the first import in a container
# does not rebuild it. Kept out of /opt/venv, which stays one layer. Matplotlib
# gathers the font files in a set: a fixed hash seed keeps their order in the list.
RUN --mount=type=bind,source=scrub,target=/usr/local/bin/scrub \
    PYTHONHASHSEED=0 MPLCONFIGDIR=/opt/matplotlib-cache \
        python3 -c 'import matplotlib.font_manager' \
    && test -n "$(ls /opt/matplotlib-cache)" \
    && scrub
