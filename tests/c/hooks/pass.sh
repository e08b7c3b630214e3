#!/bin/sh
# A pre-upgrade hook that lets every update through.
echo "pass: from $STAGEHAND_OLD_VERSION to $STAGEHAND_NEW_VERSION"
exit 0
