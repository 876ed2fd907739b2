# xl-info.sh
# `xl info`, its errors in the same stream (the doctor shows them).
xl info 2>&1
