WORKDIR /workspace
USER 1000:1000
CMD ["bash"]
