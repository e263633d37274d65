"""portscope: every port published to containers on a Linux host, and safe ways to change them."""
