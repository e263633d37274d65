"""`portscope recreate`: change a container's published ports the Docker way, by recreating it losslessly.

One job per module: `plan` (the new container's configuration, from `docker inspect`), `precheck` (the new
host ports are free), `engine` (the few engine calls, errors turned into ours), `journal` (the record that
lets an interrupted swap be finished or undone) and `swap` (stop, rename aside, create, start, remove).
"""
