#!/bin/sh
# A pre-upgrade hook that refuses the update (a barrier).
echo "cannot upgrade from $STAGEHAND_OLD_VERSION to $STAGEHAND_NEW_VERSION: update to 1.5 first" >&2
exit 3
