# The Java runtime tabula-py runs its jar on: only the modules tabula-java uses
# (AWT's image and font classes among them, run headless), linked by jlink from
# Debian's JDK. Debian's full headless JRE carries every module of the JDK:
# 67 MB compressed against 29 MB for this one. Built for the target's own
# architecture, since jlink links the target's modules; the JDK that builds it
# never enters an image. AWT's X11, splash-screen and sound libraries are left
# out: headless Java never loads them, and the image has none of the libraries
# they link. The JDK's postinst links its man pages and fails where slim images
# have no man1.
FROM ${BASE} AS java
ARG DEBIAN_FRONTEND=noninteractive
ARG JAVA_MODULES=java.base,java.desktop,java.logging,java.naming,java.sql,java.xml,jdk.charsets
RUN --mount=type=bind,from=apt-lists,source=/var/lib/apt/lists,target=/var/lib/apt/lists,rw \
    mkdir -p /usr/share/man/man1 \
    && apt-get install -y --no-install-recommends openjdk-21-jdk-headless \
    && jdk=$(dirname "$(dirname "$(readlink -f /usr/bin/javac)")") \
    && "$jdk/bin/jlink" --module-path "$jdk/jmods" --add-modules "$JAVA_MODULES" \
        --strip-java-debug-attributes --no-header-files --no-man-pages --output /opt/java \
    && rm /opt/java/lib/libawt_xawt.so /opt/java/lib/libsplashscreen.so /opt/java/lib/libjsound.so
